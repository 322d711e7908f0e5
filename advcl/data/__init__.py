"""Datasets: the catalogue (local folders, hub fallback), user files, and batching."""
