"""The training loop: session setup, the trainer, optimizer and schedule, validation, checkpoints and resume."""
