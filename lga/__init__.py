"""lga: Local-Global Attention and baseline attention blocks for CNNs, with fair comparisons."""

from . import runtime  # noqa: F401  (sets OpenMP's wait policy before anything loads torch)
