"""The experience store: typed tables, migrations, reward, pair mining, PII scrubbing and snapshots."""
