"""The one training engine: optimizer, schedule, devices, precision, checkpoints, resume, progress."""
