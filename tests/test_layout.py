"""The package's architecture: the analysis of finished runs never loads torch."""

import pkgutil
import subprocess
import sys

import lga.analysis


def test_no_analysis_module_imports_torch():
    """Every module of lga.analysis (and the lga.report / lga.study commands) imports without torch."""
    modules = [f"lga.analysis.{m.name}" for m in pkgutil.iter_modules(lga.analysis.__path__)]
    assert {"lga.analysis.results", "lga.analysis.record", "lga.analysis.identity"} <= set(modules)
    code = (
        f"import importlib, sys\nfor name in {[*modules, 'lga.report', 'lga.study']!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert 'torch' not in sys.modules, f'{name} imported torch'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_committed_records_and_reports_hold_no_machine_paths():
    """A record or report must mean the same thing in any clone: no absolute path of a checkout,
    a home or a temporary directory in experiments/ (records, reports, tables) or the README."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    machine_path = re.compile(r"(?<![\w.])/(work|tmp|home|root|Users|mnt|scratch)/")
    files = [p for p in (root / "experiments").rglob("*") if p.suffix in (".json", ".md", ".csv", ".yaml")]
    found = [
        f"{p.relative_to(root)}:{n}"
        for p in [*files, root / "README.md"]
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if machine_path.search(line)
    ]
    assert len(files) > 100 and not found, found
