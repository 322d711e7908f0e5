"""advcl: contrastive adversarial training for Transformer text encoders."""

__version__ = "0.1.0"
