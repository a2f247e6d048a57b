"""Bring your own block: ``attention=external attention.target=pkg.Block`` (lga.attention.external).

The user's blocks live in tmp_path, outside lga, and reach it only through PYTHONPATH (sys.path here).
"""

import json
import re
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from lga.analysis.identity import job_axes
from lga.attention import create_external
from tests.conftest import ROOT, _lga_env

BLOCKS = '''
import torch
from torch import nn


class Gate(nn.Module):
    """A sigmoid gate from a 1x1 bottleneck, with batch norm (its statistics must survive the check)."""

    def __init__(self, channels, *, reduction=4):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.BatchNorm2d(channels // reduction), nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1),
        )

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x))


class TwoWidths(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.conv(x)


class Halves(TwoWidths):
    def __init__(self, channels):
        super().__init__(channels, channels // 2)


class Pools(nn.Module):
    def __init__(self, channels):
        super().__init__()

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x, 2)


class Square(nn.Module):
    """Works only on square maps: the check's 6x5 input finds that out."""

    def __init__(self, channels):
        super().__init__()

    def forward(self, x):
        return x.view(x.shape[0], x.shape[1], x.shape[2], x.shape[2])


class Pair(nn.Module):
    def __init__(self, channels):
        super().__init__()

    def forward(self, x):
        return x, x


class Picky(nn.Module):
    def __init__(self, channels, *, reduction=4):
        super().__init__()
        if channels % reduction:
            raise ValueError(f"reduction={reduction} does not divide {channels}")


def not_a_module(channels):
    return channels
'''


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    """``userblocks``: a module of user blocks, importable from a directory outside lga."""
    directory = tmp_path_factory.mktemp("user")
    (directory / "userblocks.py").write_text(BLOCKS)
    (directory / "userbroken.py").write_text("undefined_name\n")
    sys.path.insert(0, str(directory))
    yield directory
    sys.path.remove(str(directory))
    sys.modules.pop("userblocks", None)


def test_an_external_block_is_built_as_is_and_checked_without_side_effects(blocks):
    block = create_external(16, target="userblocks.Gate", options={"reduction": 8})
    assert type(block).__name__ == "Gate" and type(block).__module__ == "userblocks"  # not wrapped
    assert block.fc[0].out_channels == 2 and block.training
    bn = block.fc[1]
    assert bn.num_batches_tracked == 0 and torch.equal(bn.running_mean, torch.zeros(2))  # the check ran in eval mode
    x = torch.randn(2, 16, 7, 7)
    assert block(x).shape == x.shape


@pytest.mark.parametrize(
    "target, options, message",
    [
        ("userblocks", {}, "is not an import path; give package.module.Class"),
        ("nopkg.blocks.Gate", {}, "cannot import nopkg.blocks (ModuleNotFoundError: No module named 'nopkg'); "
         "is its package installed, or its directory on PYTHONPATH?"),
        ("userbroken.Gate", {}, "cannot import userbroken (NameError: name 'undefined_name' is not defined)"),
        ("userblocks.Gat", {}, "module userblocks has no 'Gat'"),
        ("userblocks.TwoWidths", {}, "missing a required argument: 'out_channels'; its signature is "
         "(in_channels, out_channels). An attention block takes the channel count first"),
        ("userblocks.Gate", {"ratio": 2}, "got an unexpected keyword argument 'ratio'; its signature is "
         "(channels, *, reduction=4)"),
        ("userblocks.Picky", {"reduction": 5}, "failed to build: ValueError: reduction=5 does not divide 16"),
        ("userblocks.not_a_module", {}, "returned a int object, not a torch.nn.Module"),
        ("userblocks.Halves", {}, "maps a (2, 16, 6, 5) input to (2, 8, 6, 5); an attention block must return "
         "a tensor of its input's shape"),
        ("userblocks.Pools", {}, "maps a (2, 16, 6, 5) input to (2, 16, 3, 2)"),
        ("userblocks.Square", {}, "fails on a (2, 16, 6, 5) input (RuntimeError: "),
        ("userblocks.Pair", {}, "maps a (2, 16, 6, 5) input to tuple"),
    ],
)  # fmt: skip
def test_a_bad_external_block_says_what_is_wrong_and_names_itself(blocks, target, options, message):
    with pytest.raises(ValueError) as err:
        create_external(16, target=target, name="mine", options=options)
    assert message in str(err.value)
    assert f"attention block mine ({target})" in str(err.value)


def test_external_config_composes_from_the_command_line_and_from_a_users_config_dir(blocks, compose_cfg, tmp_path):
    from hydra.errors import ConfigCompositionException
    from hydra.utils import instantiate

    cfg = compose_cfg("attention=external", "attention.target=userblocks.Gate", "+attention.options={reduction: 8}")
    assert OmegaConf.to_container(cfg.attention, resolve=True) == {
        "_target_": "lga.attention.external.create_external",
        "_partial_": True,
        "_convert_": "all",
        "target": "userblocks.Gate",
        "name": "Gate",
        "options": {"reduction": 8},
    }  # fmt: skip  (no name given: the class's, so searches and reports of two blocks stay apart)
    with pytest.raises(ConfigCompositionException):  # the schema is closed: a mistyped key fails at compose time
        compose_cfg("attention=external", "attention.taget=userblocks.Gate")
    (tmp_path / "attention").mkdir()
    (tmp_path / "attention/gate.yaml").write_text(
        "defaults: [/attention/external@_here_, _self_]\nname: gate\ntarget: userblocks.Gate\noptions: {reduction: 2}\n"
    )
    cfg = compose_cfg("attention=gate", f"hydra.searchpath=[file://{tmp_path}]")
    assert (cfg.attention.name, cfg.attention.target, cfg.attention.options.reduction) == ("gate", "userblocks.Gate", 2)
    assert cfg.hydra.runtime.choices.attention == "gate"
    assert type(instantiate(cfg.attention)(channels=8)).__name__ == "Gate"  # as a backbone calls the factory


@pytest.mark.parametrize(
    "overrides, name, variant",
    [
        (["attention=external", "attention.target=userblocks.Gate"], "Gate", "attention.target=userblocks.Gate"),
        (["attention=external", "attention.target=userblocks.Gate", "attention.name=gate",
          "+attention.options.reduction=2"], "gate", "+attention.options.reduction=2 attention.target=userblocks.Gate"),
        (["attention=se"], "se", ""),
    ],
)  # fmt: skip
def test_the_run_is_named_by_the_users_name_for_the_block(compose_cfg, overrides, name, variant):
    """Not ``external``: the block's name, or its class name; the name is not repeated in the variant."""
    cfg = compose_cfg(*overrides)
    axes = job_axes(cfg, cfg.hydra.runtime.choices, overrides)
    assert (axes["attention"], axes["variant"]) == (name, variant)


@pytest.mark.slow
def test_run_py_trains_an_external_block_and_stops_a_bad_one_before_training(blocks, run_lga, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(blocks))
    args = ("attention=external", "trainer=debug", "logger=none")
    proc = run_lga(*args, "attention.target=userblocks.Gate", "attention.name=gate", f"hydra.run.dir={tmp_path}/ok")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "ok/result.json").read_text())
    assert (record["attention"], record["status"], record["variant"]) == (
        "gate", "ok", "attention.target=userblocks.Gate trainer=debug"
    )  # fmt: skip
    proc = run_lga(*args, "attention.target=userblocks.Halves", f"hydra.run.dir={tmp_path}/bad")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "attention block Halves (userblocks.Halves) maps a (2, 96, 6, 5) input to (2, 48, 6, 5)" in proc.stderr
    record = json.loads((tmp_path / "bad/result.json").read_text())
    assert (record["attention"], record["status"]) == ("Halves", "failed")


def _readme_example() -> tuple[str, str, str]:
    """The README's example (section "Your own block"): its Python block, its yaml and its commands."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Your own block, without editing lga", 1)[1].split("\n### ", 1)[0]
    found = re.findall(r"```(?:python|yaml|bash)\n(.*?)```", section, re.S)
    assert len(found) == 3, "the README's example has a python, a yaml and a bash block"
    return tuple("\n" + text for text in found)


def _run_readme_example(home):
    """Write the example's files under ``home`` (its ``~``) and run its commands there, one batch per job, 2 seeds."""
    block, yaml, commands = _readme_example()
    for text in (block, yaml):
        path = home / text.split(":", 1)[0].removeprefix("\n# ~/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for old, new in (
        ("seed=0,1,2", "seed=0,1 trainer=debug logger=none"),
        ("python run.py", f"{sys.executable} {ROOT / 'run.py'}"),
        ("python -m", f"{sys.executable} -m"),
    ):
        assert old in commands
        commands = commands.replace(old, new)
    env = {**_lga_env(home), "HOME": str(home)}
    return subprocess.run(["bash", "-ec", commands], cwd=home, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow  # about 2 minutes: two sweeps (8 one-batch jobs) and a report
def test_readme_example_sweeps_a_users_block_against_none_and_se(tmp_path):
    proc = _run_readme_example(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (tmp_path / "logs/gate/summary.csv").read_text()
    assert summary.count(",gate,") == 2 and summary.count(",se,") == 2 and summary.count(",none,") == 2
    report = (tmp_path / "logs/gate/report.md").read_text()
    assert "| gate |" in report and "| se |" in report and "external" not in report
    assert "gate" in proc.stdout  # the report printed to the console
    single = [p for p in (tmp_path / "logs/multiruns").glob("*/summary.csv")]
    assert len(single) == 1 and single[0].read_text().count(",gate,") == 2
