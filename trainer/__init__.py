"""The Ray Train job that turns a dataset snapshot into a LoRA adapter (TRL DPO/SFT + PEFT). Built by issue 4."""
