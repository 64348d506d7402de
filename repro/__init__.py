"""repro: Transformer/LLM paper cards whose claims are re-measured by code."""

__version__ = "0.1.0"
