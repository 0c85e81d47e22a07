"""unimodel: small, tested implementations of the models on the road to unified multimodal models."""

from unimodel import sources as _sources

__version__ = "0.1.0"

_sources.record_imports()
