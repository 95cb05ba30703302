"""Device-throughput comparison: ``compare`` times training steps per device and batch size.

``gradflow bench`` (``gradflow.bench.cli``) is built on ``compare``; the built-in models
live in ``gradflow.bench.models``.
"""

from .result import BenchResult
from .runner import compare

__all__ = ["BenchResult", "compare"]
