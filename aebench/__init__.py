"""aebench: compare autoencoder training techniques side by side, honestly and fast."""

__version__ = "0.1.0"
