"""The data logic between experience and training, pure: reward weighting, preference-pair mining, PII scrubbing."""
