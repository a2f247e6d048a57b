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
