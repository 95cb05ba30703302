"""Training utilities: ``data`` (datasets and loaders) and ``checkpoint`` (recomputation)."""
