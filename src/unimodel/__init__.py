"""unimodel: small, tested implementations of the models on the road to unified multimodal models."""

__version__ = "0.1.0"
