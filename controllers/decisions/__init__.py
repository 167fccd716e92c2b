"""Pure decisions: observed facts + spec + now -> a plan (conditions, run plans, triggers, validation, the experiment engine). No I/O: import-linter keeps it so."""
