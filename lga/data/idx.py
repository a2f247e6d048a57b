"""Read IDX files (MNIST's format), gzipped or not, with errors that name the file."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from ..utils import LGAError

_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetFileError(LGAError):
    """A dataset file is missing, truncated or not in the expected format."""


def read_idx(path: str | Path) -> torch.Tensor:
    """Load an IDX file (``.gz`` or raw) into a tensor of its stored dtype and shape."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DatasetFileError(
            f"{path} is truncated or not a valid gzip file ({err}); delete it and copy or download it again"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DatasetFileError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetFileError(
            f"{path} holds {len(raw)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or corrupt: delete it and copy or download it again"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def check_labels(labels: torch.Tensor, num_classes: int, path: str | Path) -> None:
    """Every label in 0 .. num_classes - 1, or :class:`DatasetFileError` naming the file, the first bad
    label and its index (found at load, not as an IndexError deep inside the loss)."""
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
    if len(bad):
        first = int(bad[0])
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DatasetFileError(
            f"{path}: label {int(labels[first])} at index {first}{more} is outside 0..{num_classes - 1} "
            f"(dataset.num_classes={num_classes}); replace the file, or set dataset.num_classes to the labels it holds"
        )


def check_finite(images: torch.Tensor, path: str | Path) -> None:
    """No NaN or infinite pixel (only float files can hold one), or :class:`DatasetFileError` naming the file:
    such an input would otherwise end the run as ``diverged``, as if the learning rate were to blame."""
    if not images.is_floating_point():
        return
    bad = ~torch.isfinite(images).reshape(len(images), -1).all(1)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise DatasetFileError(
            f"{path}: image {first} holds NaN or infinite pixels ({int(bad.sum())} image(s) in all); "
            "replace the file with a clean copy"
        )


def write_idx(path: str | Path, tensor: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    array = tensor.numpy().astype(np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
