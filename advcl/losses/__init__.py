"""Losses: small ``nn.Module`` classes, one per file, each citing what it implements."""
