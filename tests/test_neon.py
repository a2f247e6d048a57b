"""neon_trees: tiling, the split by image, the install target, and a training run on the real files.

Tests on the real images skip when they are not installed, and fail instead under CI (which
installs them through ``make install``)."""

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lga.callbacks import EpochSeed
from lga.data import DatasetFileError, NEONTreesDataModule
from lga.data.classification import SeededShuffleSampler
from lga.data.neon import (
    DEFAULT_SPLITS,
    NEON_IMAGES,
    RandomViews,
    SourceImage,
    check_splits,
    keep_visible,
    orient,
    read_source,
    tile_image,
    tile_origins,
)
from tests.conftest import ROOT


@pytest.fixture
def neon_root() -> Path:
    root = Path(os.environ.get("LGA_DATA_DIR", ROOT / "data")) / "neon_trees"
    if not all((root / f"{name}.{ext}").is_file() for name in NEON_IMAGES for ext in ("png", "xml")):
        message = f"the NEON tree-crown files are not in {root}: run `make install-neon`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


def _source(boxes, height=90, width=100) -> SourceImage:
    pixels = torch.randint(1, 256, (3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor(boxes, dtype=torch.float32)
    return SourceImage("synthetic", pixels, boxes, torch.zeros(len(boxes), dtype=torch.int64))


# -- tiling -----------------------------------------------------------------------------------
def test_tiles_cover_the_image_once_with_centred_padding():
    source = _source([[1, 1, 5, 5]])
    tiled = tile_image(source, 40)
    # 100 px wide -> 3 tiles, 20 px padding split 10/10; 90 high -> 3 tiles, 30 px split 15/15
    assert tiled.tiles.shape == (9, 3, 40, 40)
    canvas = torch.zeros(3, 120, 120, dtype=torch.uint8)
    for i, tile in enumerate(tiled.tiles):
        row, col = divmod(i, 3)
        canvas[:, row * 40 : row * 40 + 40, col * 40 : col * 40 + 40] = tile
    assert torch.equal(canvas[:, 15:105, 10:110], source.pixels)
    canvas[:, 15:105, 10:110] = 0
    assert not canvas.any()  # the rest is padding


def test_a_box_goes_to_the_tile_holding_most_of_it_clipped_or_is_dropped():
    # tile columns start at x = -10, 30, 70 and rows at y = -15, 25, 65 (see the test above)
    boxes = [
        [40, 30, 60, 50],  # inside the centre tile (index 4)
        [24, 30, 40, 50],  # 10 of its 16 px in the centre column: kept there, clipped
        [20, 0, 40, 10],  # exactly half in two tiles: more than half is in neither, dropped
        [25, 20, 35, 30],  # a quarter in each of four tiles: dropped
    ]
    tiled = tile_image(_source(boxes), 40)
    assert [ids.tolist() for ids in tiled.source_boxes] == [[], [], [], [], [0, 1], [], [], [], []]
    assert torch.equal(tiled.targets[4]["boxes"], torch.tensor([[10.0, 5, 30, 25], [0, 5, 10, 25]]))
    assert tiled.dropped == 2
    # a lower bar is allowed only where it still keeps a box in one tile
    with pytest.raises(ValueError, match=r"min_visible must be in \[0.5, 1\)"):
        NEONTreesDataModule(name="neon_trees", files_dir="unused", min_visible=0.4, mean=[0.5] * 3, std=[0.2] * 3)


def test_real_images_tile_with_every_box_once_but_one(neon_root):
    """At 400 px every box is in exactly the one grid tile that holds more than half of it, but for one crown of
    the larger Yellowstone crop (the test image), which tile borders cut into parts of at most half its area
    (checked box by box here)."""
    dropped = {}
    for name in NEON_IMAGES:
        source = read_source(neon_root, name, ["Tree"])
        tiled = tile_image(source, 400)
        height, width = source.pixels.shape[1:]
        windows = torch.tensor(
            [[x, y, x + 400, y + 400] for y in tile_origins(height, 400) for x in tile_origins(width, 400)]
        )
        assigned = {int(i): tile for tile, ids in enumerate(tiled.source_boxes) for i in ids}
        assert sum(len(ids) for ids in tiled.source_boxes) == len(assigned) == tiled.num_boxes - tiled.dropped
        for index, box in enumerate(source.boxes):
            inter = (torch.minimum(windows[:, 2:], box[2:]) - torch.maximum(windows[:, :2], box[:2])).clamp(min=0)
            holding_most = (inter.prod(1) > 0.5 * (box[2:] - box[:2]).prod()).nonzero()[:, 0].tolist()
            assert holding_most == ([assigned[index]] if index in assigned else [])
        dropped[name] = tiled.dropped
    assert dropped == {name: int(name == NEON_IMAGES[0]) for name in NEON_IMAGES}


# -- splits -------------------------------------------------------------------------------------
def test_splits_must_be_whole_disjoint_images():
    check_splits(DEFAULT_SPLITS)
    assert sorted(n for names in DEFAULT_SPLITS.values() for n in names) == sorted(NEON_IMAGES)
    with pytest.raises(ValueError, match="OSBS_029 is in both val and test"):
        check_splits({"train": ["a"], "val": ["OSBS_029"], "test": ["OSBS_029"]})
    with pytest.raises(ValueError, match="splits must give images for exactly train, val, test"):
        check_splits({"train": ["a"], "val": [], "test": ["b"]})


def test_datamodule_splits_hold_their_own_images_tiles(neon_root):
    dm = NEONTreesDataModule(name="neon_trees", files_dir=str(neon_root))
    dm.setup()
    splits = {"train": dm.data["train"].tiles, "val": dm.data["val"], "test": dm.data["test"]}
    for split, names in DEFAULT_SPLITS.items():
        tiled = [tile_image(read_source(neon_root, name, ["Tree"]), 400) for name in names]
        assert torch.equal(splits[split].images, torch.cat([t.tiles for t in tiled]))
    counts = {s: (len(d), sum(len(t["boxes"]) for t in d.targets)) for s, d in splits.items()}
    assert counts == {"train": (12, 279), "val": (2, 98), "test": (42, 573)}
    assert len(dm.data["train"]) == 8 * 12  # every training tile in its 8 orientations
    assert dm.class_names == ["Tree"] and dm.in_chans == 3 and len(dm.mean) == len(dm.std) == 3
    images, targets = next(iter(dm.train_dataloader()))
    assert len(images) == 8 and images[0].shape == (3, 400, 400) and images[0].dtype == torch.uint8
    assert targets[0]["boxes"].dtype == torch.float32 and (targets[0]["labels"] == 0).all()


def test_the_eight_orientations_move_boxes_with_their_pixels():
    image = torch.zeros(1, 10, 10, dtype=torch.uint8)
    image[0, 1:4, 5:9] = 1  # rows 1-3, columns 5-8: the box [5, 1, 9, 4]
    seen = set()
    for orientation in range(8):
        turned, boxes = orient(image, torch.tensor([[5.0, 1, 9, 4]]), orientation)
        rows, cols = turned[0].nonzero().unbind(1)
        assert boxes.tolist() == [[cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]]
        seen.add(turned.numpy().tobytes())
    assert len(seen) == 8


# -- random views --------------------------------------------------------------------------------
def _one_box_source(box, size=600) -> SourceImage:
    """A black square image with one white rectangle: its box is where its pixels are."""
    pixels = torch.zeros(3, size, size, dtype=torch.uint8)
    x0, y0, x1, y1 = box
    pixels[:, y0:y1, x0:x1] = 255
    return SourceImage("one-box", pixels, torch.tensor([box], dtype=torch.float32), torch.zeros(1, dtype=torch.int64))


def test_random_views_move_boxes_with_their_pixels():
    """At every scale, place and orientation a kept box is where its pixels went, to a pixel (the resize
    blurs the edge); a box less than half in the window is dropped."""
    views = RandomViews([_one_box_source([250, 270, 330, 310])], 200, 64, scale=1.5, color=0.0)
    checked = dropped = 0
    for seed in range(64):
        views.reseed(seed)
        image, target = views[0]
        assert image.shape == (3, 200, 200) and image.dtype == torch.uint8
        white = (image[0] > 127).nonzero()
        if not len(target["boxes"]):
            dropped += 1
            continue
        rows, cols = white[:, 0], white[:, 1]
        seen = torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)
        assert torch.allclose(target["boxes"][0], seen, atol=1.5), (seed, target["boxes"][0], seen)
        checked += 1
    assert checked > 10 and dropped > 5  # both cases were drawn


def test_a_random_view_is_a_function_of_the_epoch_seed_and_its_index_alone():
    """The same (seed, index) gives the same view whatever torch's global generator did in between (a model's
    dropout, another block); another index or seed gives another view. EpochSeed reseeds the dataset."""
    views = RandomViews([_source([[10, 10, 40, 40]], height=300, width=300)], 100, 8)
    views.reseed(3)
    torch.manual_seed(0)
    first = [views[i] for i in range(4)]
    torch.manual_seed(1)
    torch.rand(1000)
    again = [views[i] for i in range(4)]
    for (a, ta), (b, tb) in zip(first, again):
        assert torch.equal(a, b) and torch.equal(ta["boxes"], tb["boxes"])
    assert not torch.equal(first[0][0], first[1][0])
    views.reseed(4)
    assert not torch.equal(first[0][0], views[0][0])

    loader = SimpleNamespace(sampler=SeededShuffleSampler(8), dataset=views)
    EpochSeed(seed=2).on_train_epoch_start(SimpleNamespace(global_step=10, train_dataloader=loader), None)
    assert views.seed == loader.sampler.seed == 2 * 100_003 + 11


def test_keep_visible_keeps_a_box_more_than_half_inside_the_window():
    """Boxes 40%, 50% and 60% inside a window: only the last is kept, clipped and moved to the window's origin."""
    window = torch.tensor([100.0, 100.0, 200.0, 200.0])
    boxes = torch.tensor([[94.0, 120, 104, 130], [95.0, 120, 105, 130], [96.0, 120, 106, 130]])
    kept, index = keep_visible(boxes, window, 0.5)
    assert index.tolist() == [2] and kept.tolist() == [[0.0, 20.0, 6.0, 30.0]]


def test_random_views_need_images_that_hold_the_largest_window(neon_root):
    with pytest.raises(ValueError, match="at least 800 px.*dataset.train_views=tiles or a lower dataset.view_scale"):
        NEONTreesDataModule(
            name="neon_trees", files_dir=str(neon_root), train_views="random", image_size=400, view_scale=2.0,
            splits={"train": ["OSBS_029"], "val": ["SOAP_061"], "test": [DEFAULT_SPLITS["test"][0]]},
        )  # fmt: skip
    with pytest.raises(ValueError, match="train_views must be one of tiles, random"):
        NEONTreesDataModule(name="neon_trees", files_dir=str(neon_root), train_views="crops")
    with pytest.raises(ValueError, match="set dataset.num_workers=0"):
        NEONTreesDataModule(name="neon_trees", files_dir=str(neon_root), train_views="random", num_workers=2)
    dm = NEONTreesDataModule(name="neon_trees", files_dir=str(neon_root), train_views="random")
    dm.setup()
    assert isinstance(dm.data["train"], RandomViews) and len(dm.data["train"]) == 8 * 12


def test_alive_and_dead_kept_apart_on_request(neon_root):
    soap = read_source(neon_root, "SOAP_061", ["Tree", "Alive", "Dead"])
    assert torch.bincount(soap.labels, minlength=3).tolist() == [0, 9, 28]
    assert read_source(neon_root, "SOAP_061", ["Tree"]).labels.unique().tolist() == [0]


def test_missing_files_say_how_to_install(tmp_path):
    with pytest.raises(DatasetFileError, match=r"not found; run `make install-neon`.*pip download --no-deps"):
        NEONTreesDataModule(name="neon_trees", files_dir=str(tmp_path))


# -- install target -----------------------------------------------------------------------------
def _make_install_neon(tmp_path: Path) -> subprocess.CompletedProcess:
    # pip pointed at a closed local port: no network, whatever the machine's pip configuration
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}
    return subprocess.run(
        ["make", "--no-print-directory", "install-neon", f"NEON_DIR={tmp_path / 'neon'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_install_without_network_is_a_note_not_a_failure(tmp_path):
    proc = _make_install_neon(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "note: could not download deepforest==2.1.0" in proc.stdout and not (tmp_path / "neon").exists()


def test_install_skips_when_the_files_are_there(tmp_path):
    (tmp_path / "neon").mkdir()
    for name in NEON_IMAGES:
        (tmp_path / "neon" / f"{name}.png").touch()
        (tmp_path / "neon" / f"{name}.xml").touch()
    proc = _make_install_neon(tmp_path)
    assert proc.returncode == 0 and "NEON tree crowns already in" in proc.stdout, proc.stdout + proc.stderr


# -- end to end ---------------------------------------------------------------------------------
def test_config_composes(compose_cfg):
    cfg = compose_cfg("task=detection", "dataset=neon_trees")
    assert cfg.dataset._target_ == "lga.data.NEONTreesDataModule" and cfg.dataset.image_size == 400
    assert cfg.dataset.files_dir.endswith("neon_trees") and cfg.backbone.stem_stride == 2


def test_debug_run_trains_and_records(neon_root, run_lga, tmp_path):
    proc = run_lga(
        "task=detection", "dataset=neon_trees", f"dataset.files_dir={neon_root}", "trainer=debug", "logger=none",
        f"hydra.run.dir={tmp_path}/run",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "run/result.json").read_text())
    assert result["status"] == "ok" and result["task"] == "detection"
    assert result["config"]["dataset"]["name"] == "neon_trees" and "test/map50" in result["metrics"]


def test_make_install_fetches_the_images_and_wheel_the_loader_reads():
    """`make install-neon` lists the files in shell; a change to one list must reach the other."""
    import re

    from lga.data import neon
    from tests.conftest import ROOT

    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^NEON_IMAGES = (.+)$", makefile, re.M).group(1).split() == list(neon.NEON_IMAGES)
    assert re.search(r"^NEON_WHEEL = (.+)$", makefile, re.M).group(1).strip() == neon.NEON_WHEEL
