"""Run identity is defined once (lga.analysis.identity): every key of every composable config is
classified, and everything that names or matches a run derives from that classification."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lga.analysis.identity import (
    IDENTITY,
    LOCATION,
    RUN_ONLY,
    UnclassifiedKey,
    classify,
    job_subdir,
    run_identity,
    variant,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
# groups that run.py composes (conf/comparisons is read by lga.study, conf/hydra by Hydra)
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("comparisons", "hydra"))


def _leaf_keys(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_keys(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1]


def _every_option():
    for group in GROUPS:
        for option in sorted((CONF / group).glob("*.yaml")):
            yield f"{group}={option.stem}"


@pytest.mark.parametrize("choice", list(_every_option()))
def test_every_key_of_every_option_is_classified(compose_cfg, choice):
    cfg = compose_cfg(choice)
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra")
    unclassified = []
    for key in _leaf_keys(container):
        try:
            classify(key)
        except UnclassifiedKey:
            unclassified.append(key)
    assert not unclassified, f"{choice}: classify these in lga.analysis.identity.KEYS: {unclassified}"


def test_an_unclassified_top_level_key_is_an_error():
    with pytest.raises(UnclassifiedKey, match="'new_option.depth' is not classified"):
        classify("new_option.depth")


def test_a_key_takes_the_class_of_its_longest_classified_prefix():
    assert classify("trainer.max_epochs") == IDENTITY
    assert classify("trainer.devices") == RUN_ONLY
    assert classify("dataset.search_dirs") == LOCATION and classify("dataset.source.search_dirs") == LOCATION
    assert classify("+attention.pos_embed") == IDENTITY and classify("hydra/launcher") == RUN_ONLY


def test_names_directories_and_identity_agree_on_what_changes_a_result(compose_cfg):
    overrides = ["attention=lga", "seed=1", "logger=none", "runtime.threads=1", "study_dir=/x", "tags=[a]",
                 "attention.fusion=softmax", "experiment=study_tiny"]  # fmt: skip
    assert variant(overrides) == "attention.fusion=softmax experiment=study_tiny"
    assert job_subdir(overrides, ["experiment"]) == "attention.fusion=softmax,attention=lga,seed=1"
    plain, noisy = compose_cfg(), compose_cfg("logger=none", "runtime.threads=1", "trainer.enable_progress_bar=true")
    assert run_identity(plain) == run_identity(noisy)
    assert run_identity(plain) != run_identity(compose_cfg("trainer.max_epochs=3"))
    assert "paths" not in run_identity(plain) and "search_dirs" not in run_identity(plain)["dataset"]


def test_every_range_check_names_an_option_some_config_has(compose_cfg):
    """lga.config.RANGES is keyed by dotted names and skips a key a config lacks: a renamed option
    would drop its check silently, so every key must exist in at least one composable option."""
    from lga.config import RANGES

    found = set()
    for choice in _every_option():
        container = OmegaConf.to_container(compose_cfg(choice), resolve=False)
        container.pop("hydra")
        keys = set(_leaf_keys(container))
        found |= {k for k in RANGES if k in keys or any(key.startswith(k + ".") for key in keys)}
    assert set(RANGES) - found == set(), "range checks of options no config has: rename them in lga.config.RANGES"


STUDY = Path(__file__).resolve().parents[1] / "experiments" / "study"


def test_every_committed_study_record_is_the_job_its_command_composes_today(compose_cfg):
    """A new identity option (or a changed default) must not orphan the committed records: each record's
    identity, read through INTRODUCED, equals the identity its own overrides compose to now."""
    from lga.analysis.record import read_record
    from lga.resume import identity_differences

    records = sorted(STUDY.glob("*/jobs/*/result.json"))
    if not records:
        pytest.skip("no study records committed")
    stale = {}
    for path in records:
        record = read_record(path)
        found = identity_differences(record.config, run_identity(compose_cfg(*record.overrides)), "record")
        if found:
            stale[path.parent.name] = found[:3]
    assert not stale, stale


def test_a_key_introduced_later_reads_as_its_old_behaviour():
    from lga.analysis.identity import INTRODUCED, with_introduced

    assert "dataset.augment" in INTRODUCED
    saved = {"dataset": {"name": "fashion"}, "seed": 0}
    now = {"dataset": {"name": "fashion", "augment": "none"}, "seed": 0}
    assert with_introduced(saved, now) == now and saved == {"dataset": {"name": "fashion"}, "seed": 0}
    assert with_introduced(saved, {"dataset": {"name": "tiny_objects"}}) == saved  # a dataset without the key
    augmented = {"dataset": {"name": "fashion", "augment": "pad_crop_flip"}, "seed": 0}
    assert with_introduced(saved, augmented) != augmented  # an augmented run is another run


def test_an_identity_less_its_introduced_keys_is_what_it_was_before_them():
    """W&B run ids hash the identity: a job resumed across a new option must keep its run."""
    from lga.analysis.identity import with_introduced, without_introduced

    before = {"dataset": {"name": "fashion"}, "trainer": {"max_epochs": 5}, "seed": 0}
    now = {
        "dataset": {"name": "fashion", "augment": "none"},
        "trainer": {"max_epochs": 5, "_target_": "lightning.pytorch.Trainer", "_partial_": True, "_convert_": "all"},
        "seed": 0,
    }
    assert with_introduced(before, now) == now and without_introduced(now) == before
    augmented = {**now, "dataset": {"name": "fashion", "augment": "pad_crop_flip"}}
    assert without_introduced(augmented)["dataset"] == {"name": "fashion", "augment": "pad_crop_flip"}


def test_a_users_dataset_file_is_identity_but_neons_install_dir_is_not():
    """Two YOLO (or VOC, COCO) runs on different datasets are different runs; where make install put
    NEON's fixed files is not."""
    for key in ("dataset.data", "dataset.root", "dataset.annotations.train", "dataset.images.val"):
        assert classify(key) == IDENTITY, key
    assert job_subdir(["dataset=yolo", "dataset.data=/a/visdrone.yaml"]) != job_subdir(
        ["dataset=yolo", "dataset.data=/b/dota.yaml"]
    )
    assert classify("dataset.files_dir") == LOCATION


def test_a_preset_of_a_block_is_its_own_axis_and_an_external_block_takes_its_name(compose_cfg):
    from lga.analysis.identity import job_axes

    cfg = compose_cfg("attention=lga_released")  # a preset yaml of the lga block class
    assert job_axes(cfg, {**cfg.hydra.runtime.choices}, [])["attention"] == "lga_released"
    cfg = compose_cfg("attention=external", "attention.target=torch.nn.Identity")
    assert cfg.attention.name == "Identity"  # the class, when no name is given
    assert job_axes(cfg, {**cfg.hydra.runtime.choices}, [])["attention"] == "Identity"
