"""lga: Local-Global Attention and baseline attention blocks for CNNs, with fair comparisons."""

from . import runtime  # noqa: F401  (sets OMP_WAIT_POLICY before anything loads torch)
