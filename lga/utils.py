"""Small helpers shared across lga."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

# the checkout (or installed source tree) lga runs from: conf/, run.py and experiments/ live here
REPO_ROOT = Path(__file__).resolve().parents[1]


class LGAError(RuntimeError):
    """An error in the user's input (config, data files) with a message that says how to fix it."""


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` accepts a connection within ``timeout`` seconds (never blocks longer)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file.

    The file gets the permissions an ordinary ``open`` would give (0666 less the umask),
    not mkstemp's private 0600: teammates on a shared cluster read results too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finite_or_none(data: Any) -> Any:
    """``data`` with every NaN or infinite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_none(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_none(v) for v in data]
    return data


def write_json(path: str | Path, data: Any) -> None:
    """Strict JSON (non-finite numbers become null), written atomically."""
    write_atomic(path, json.dumps(finite_or_none(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (no trailing newline): ``None`` cells are blank, ``|`` and
    newlines inside cells are escaped so a long error message cannot break the table."""

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def csv_value(value: Any, digits: int = 10) -> Any:
    """A value as a CSV of results holds it: floats to ``digits`` significant digits. The default 10 keeps
    every digit a float32 metric has and drops float noise (92.61, not 92.61000000000001)."""
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` (dicts keyed by ``columns``) as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
