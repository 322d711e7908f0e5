"""Runtime plumbing below everything that runs a model: devices and precision, the process group, progress output."""
