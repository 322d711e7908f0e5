"""Encoders: loading (local folder, pip-packaged, hub), pooling, and the classifier wrapper."""
