"""Training: supervised records from the sim world (`data`) and fine-tuning Qwen3.5 checkpoints (`trainer`)."""
