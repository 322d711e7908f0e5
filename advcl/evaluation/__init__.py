"""Evaluation: classification metrics and the loops that compute them."""
