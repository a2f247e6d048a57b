"""Detection: the tiny_objects generator, the COCO / YOLO / VOC loaders, and the detectors."""

import csv
import json
import warnings
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torchvision.io import write_png

from lga.attention import create_attention
from lga.backbones import BACKBONES
from lga.data import (
    AnnotationError,
    COCODataModule,
    TinyObjectsDataModule,
    VOCDataModule,
    YOLODataModule,
    read_coco,
    read_yolo_split,
)  # fmt: skip
from lga.data.tiny_objects import generate
from lga.data.voc import read_voc_xml
from lga.models import DetectionModule
from tests.conftest import ROOT

MNIST_5K = {
    "search_dirs": [str(ROOT / "data/mnist_5k")],
    "train_files": ["train-5k-images-idx3-ubyte", "train-5k-labels-idx1-ubyte"],
    "test_files": ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
}


# -- tiny_objects -------------------------------------------------------------------------
def _items(n=50):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8), torch.randint(0, 10, (n,), generator=g)


def test_generator_is_deterministic():
    items, labels = _items()
    first = generate(items, labels, 4, image_size=96, seed=3)
    second = generate(items, labels, 4, image_size=96, seed=3)
    other = generate(items, labels, 4, image_size=96, seed=4)
    assert torch.equal(first[0], second[0]) and not torch.equal(first[0], other[0])
    for a, b in zip(first[1], second[1]):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])


def test_generator_objects_are_small_inside_and_labelled():
    items, labels = _items()
    images, targets = generate(items, labels, 8, image_size=128, object_size=(8, 32), objects_per_image=(5, 20), seed=0)
    assert images.shape == (8, 1, 128, 128) and images.dtype == torch.uint8
    boxes = torch.cat([t["boxes"] for t in targets])
    counts = [len(t["labels"]) for t in targets]
    assert all(1 <= c <= 20 for c in counts) and sum(counts) >= 8 * 5 * 0.7  # a few may find no room
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 128).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    side = (boxes[:, 2:] - boxes[:, :2]).max(1).values
    assert side.max() <= 32 and (side < 24).float().mean() > 0.5  # mostly small
    assert set(torch.cat([t["labels"] for t in targets]).tolist()) <= set(labels.tolist())


def test_generator_rejects_bad_options():
    items, labels = _items()
    with pytest.raises(ValueError, match=r"object_size must be \[min, max\]"):
        generate(items, labels, 1, image_size=64, object_size=(8, 100))
    with pytest.raises(ValueError, match="objects_per_image"):
        generate(items, labels, 1, objects_per_image=(5, 2))


def test_tiny_objects_datamodule_splits_use_distinct_items():
    dm = TinyObjectsDataModule(
        name="tiny_objects", source=MNIST_5K, num_train=6, num_val=3, num_test=3, image_size=64, batch_size=2
    )
    dm.setup()
    assert {s: len(d) for s, d in dm.data.items()} == {"train": 6, "val": 3, "test": 3}
    images, targets = next(iter(dm.train_dataloader()))
    assert len(images) == 2 and images[0].shape == (1, 64, 64) and targets[0]["boxes"].shape[1] == 4
    assert not torch.equal(dm.data["train"].images[:3], dm.data["val"].images)
    again = TinyObjectsDataModule(
        name="tiny_objects", source=MNIST_5K, num_train=6, num_val=3, num_test=3, image_size=64
    )
    again.setup()
    assert torch.equal(again.data["test"].images, dm.data["test"].images)


# -- file formats -------------------------------------------------------------------------
def _image(path: Path, width=40, height=30, channels=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(torch.full((channels, height, width), 128, dtype=torch.uint8), str(path))


def _coco(tmp_path, annotations, categories=({"id": 3, "name": "cat"}, {"id": 7, "name": "dog"})):
    _image(tmp_path / "img/a.png")
    _image(tmp_path / "img/b.png")
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": annotations,
        "categories": list(categories),
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def test_coco_reader(tmp_path):
    path = _coco(tmp_path, [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5]},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 40, 30]},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [5, 5, 4, 4], "iscrowd": 1},
        {"id": 4, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4]},
    ])  # fmt: skip
    with pytest.warns(UserWarning, match="skipped 1 annotation"):
        names, records = read_coco(path, tmp_path / "img")
    assert names == ["cat", "dog"]  # category ids 3, 7 -> classes 0, 1
    assert records[0].path == tmp_path / "img/a.png"
    assert records[0].boxes.tolist() == [[2, 3, 12, 8], [0, 0, 40, 30]] and records[0].labels.tolist() == [1, 0]
    assert records[1].boxes.shape == (0, 4)  # an image without annotations is background


@pytest.mark.parametrize(
    "annotation, message",
    [
        (
            {"id": 9, "image_id": 1, "category_id": 5, "bbox": [1, 1, 2, 2]},
            r"annotations\[0\] \(id 9\): unknown category_id 5; valid: \[3, 7\]",
        ),
        ({"id": 9, "image_id": 8, "category_id": 3, "bbox": [1, 1, 2, 2]}, r"image_id 8 is not in 'images'"),
        (
            {"id": 9, "image_id": 1, "category_id": 3, "bbox": [30, 1, 20, 2]},
            r"annotations\[0\] \(id 9\): box .* outside the 40x30 image",
        ),
        ({"id": 9, "image_id": 1, "category_id": 3, "bbox": [1, 1]}, r"bbox must be \[x, y, width, height\]"),
    ],
)
def test_coco_reader_errors(tmp_path, annotation, message):
    path = _coco(tmp_path, [annotation])
    with pytest.raises(AnnotationError, match=message) as err:
        read_coco(path, tmp_path / "img")
    assert str(path) in str(err.value)


def test_coco_reader_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{\n  "images": [],\n  "annotations": [,]\n}')
    with pytest.raises(AnnotationError, match=rf"{path}:3: malformed JSON"):
        read_coco(path, tmp_path)


def _yolo(tmp_path, labels: dict[str, str], names="[cat, dog]"):
    for stem in ("a", "b", "c"):
        _image(tmp_path / f"ds/images/train/{stem}.png", width=100, height=50)
    for stem, text in labels.items():
        (tmp_path / "ds/labels/train").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"ds/labels/train/{stem}.txt").write_text(text)
    data = tmp_path / "ds/data.yaml"
    data.write_text(f"path: .\ntrain: images/train\nval: images/train\nnames: {names}\n")
    return data


def test_yolo_reader(tmp_path):
    data = _yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.4\n\n0 0.1 0.2 0.3 0.2 0.2 0.4\n", "b": ""}, names="{0: cat, 1: dog}")
    dm = YOLODataModule(name="yolo", data=str(data), image_size=64)
    assert dm.class_names == ["cat", "dog"]
    records = {r.path.stem: r for r in read_yolo_split(dm.splits["train"], 2)}
    assert sorted(records) == ["a", "b", "c"]  # b: empty labels, c: no label file -> background
    torch.testing.assert_close(records["a"].boxes, torch.tensor([[40.0, 15, 60, 35], [10, 10, 30, 20]]))  # box, polygon
    assert records["a"].labels.tolist() == [1, 0] and records["c"].boxes.shape == (0, 4)


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 0.5 0.5 0.2", r"a.txt:2: expected 'class x_center"),
        ("3 0.5 0.5 0.1 0.1", r"a.txt:2: class 3 is not in 0..1"),
        ("x 1 2 3 4", r"a.txt:2: expected numbers"),
    ],
)  # fmt: skip
def test_yolo_reader_errors_name_file_and_line(tmp_path, line, message):
    data = _yolo(tmp_path, {"a": f"0 0.5 0.5 0.1 0.1\n{line}\n"})
    with pytest.raises(AnnotationError, match=message):
        YOLODataModule(name="yolo", data=str(data)).setup()


def test_yolo_out_of_bounds_skips_the_image_with_a_warning(tmp_path):
    data = _yolo(tmp_path, {"a": "0 0.9 0.5 0.5 0.1\n", "b": "1 0.5 0.5 0.1 0.1\n"})
    with pytest.warns(UserWarning, match=r"a.txt:1: box .* outside \[0, 1\]; image skipped"):
        records = read_yolo_split(YOLODataModule(name="yolo", data=str(data)).splits["train"], 2)
    assert sorted(r.path.stem for r in records) == ["b", "c"]


def test_yolo_yaml_errors(tmp_path):
    bad = tmp_path / "data.yaml"
    bad.write_text("train: images\nval: [unclosed\n")
    with pytest.raises(AnnotationError, match=rf"{bad}:\d+: malformed YAML"):
        YOLODataModule(name="yolo", data=str(bad))
    bad.write_text("train: images\nval: images\n")
    with pytest.raises(AnnotationError, match="needs 'train', 'val' and 'names'"):
        YOLODataModule(name="yolo", data=str(bad))


VOC_XML = """<annotation>
  <size><width>40</width><height>30</height><depth>3</depth></size>
  <object>
    <name>dog</name>
    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>20</xmax><ymax>30</ymax></bndbox>
  </object>
  <object>
    <name>{name}</name>
    <bndbox><xmin>5</xmin><ymin>5</ymin><xmax>{xmax}</xmax><ymax>9</ymax></bndbox>
  </object>
</annotation>
"""


def _voc(tmp_path, name="cat", xmax=9):
    root = tmp_path / "VOC"
    (root / "ImageSets/Main").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets/Main/train.txt").write_text("0001\n")
    (root / "ImageSets/Main/val.txt").write_text("0001\n")
    (root / "Annotations/0001.xml").write_text(VOC_XML.format(name=name, xmax=xmax))
    _image(root / "JPEGImages/0001.jpg")  # PNG bytes under .jpg: decode_image reads the content
    return root


def test_voc_reader(tmp_path):
    root = _voc(tmp_path)
    boxes, labels = read_voc_xml(root / "Annotations/0001.xml", ["cat", "dog"])
    assert boxes == [[0, 1, 20, 30], [4, 4, 9, 9]] and labels == [1, 0]  # 1-based -> 0-based


@pytest.mark.parametrize(
    "name, xmax, message",
    [
        ("cow", 9, r"0001.xml:8: unknown class 'cow'; valid: cat, dog"),
        ("cat", 45, r"0001.xml:7: box .* outside the 40x30 image"),
    ],
)
def test_voc_reader_errors_name_file_and_line(tmp_path, name, xmax, message):
    root = _voc(tmp_path, name=name, xmax=xmax)
    with pytest.raises(AnnotationError, match=message):
        VOCDataModule(name="voc", root=str(root), class_names=["cat", "dog"]).setup()


def test_voc_malformed_xml_names_the_line(tmp_path):
    root = _voc(tmp_path)
    (root / "Annotations/0001.xml").write_text("<annotation>\n  <size>\n</annotation>\n")
    with pytest.raises(AnnotationError, match=r"0001.xml:3: malformed XML"):
        read_voc_xml(root / "Annotations/0001.xml", ["cat"])


def test_file_datamodules_load_batches(tmp_path):
    coco = _coco(tmp_path, [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5]}])
    modules = [
        COCODataModule(
            name="coco", annotations={"train": str(coco), "val": str(coco)},
            images={"train": str(tmp_path / "img"), "val": str(tmp_path / "img")}, batch_size=2,
        ),
        YOLODataModule(name="yolo", data=str(_yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.4\n"})), batch_size=2, in_chans=1),
        VOCDataModule(name="voc", root=str(_voc(tmp_path)), class_names=["cat", "dog"], batch_size=1),
    ]  # fmt: skip
    for dm in modules:
        dm.setup()
        images, targets = next(iter(dm.train_dataloader()))
        assert images[0].dtype == torch.uint8 and images[0].shape[0] == dm.in_chans, dm.name
        assert targets[0]["boxes"].dtype == torch.float32 and targets[0]["labels"].dtype == torch.int64
        assert dm.num_classes == 2


# -- detectors ----------------------------------------------------------------------------
@pytest.mark.parametrize("detector", ["fcos", "retinanet"])
@pytest.mark.parametrize("placement", ["last", "stages", "se"])
def test_one_batch_train_and_eval(detector, placement, tmp_path):
    """A real training step and a validation pass (with mAP) for each detector x placement."""
    dm = TinyObjectsDataModule(
        name="tiny",
        source=MNIST_5K,
        num_train=4,
        num_val=2,
        num_test=2,
        image_size=64,
        object_size=(8, 16),
        batch_size=2,
    )
    backbone = BACKBONES.get("mobilenetv3")(
        in_chans=1, attention=partial(create_attention, "lga"), stem_stride=2, placement=placement
    )
    model = DetectionModule(
        backbone, 10, optimizer=partial(torch.optim.AdamW, lr=1e-3), detector=detector, fpn_channels=32, head_convs=1,
        image_mean=dm.mean, image_std=dm.std, input_shape=(1, 64, 64),
    )  # fmt: skip
    before = [p.detach().clone() for p in model.parameters()]
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and 0 <= float(metrics["val/map50"]) <= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert any(type(m).__name__ == "LocalGlobalAttention" for m in model.detector.backbone.body.modules())
    model.eval()
    with torch.no_grad():
        (out,) = model([dm.data["test"][0][0]])
    assert set(out) == {"boxes", "scores", "labels"} and out["boxes"].shape[1] == 4


def test_detector_options_are_checked():
    backbone = BACKBONES.get("mobilenetv3")(in_chans=1, stem_stride=2)
    make = partial(DetectionModule, backbone, 10, optimizer=torch.optim.AdamW, image_mean=[0.5], image_std=[0.25])
    with pytest.raises(ValueError, match="unknown detector 'yolo'; valid: fcos, retinanet"):
        make(detector="yolo")
    with pytest.raises(ValueError, match="multiple of 16"):
        make(fpn_channels=40)
    with pytest.raises(ValueError, match="extra_levels must be one of"):
        make(extra_levels=3)


# -- end to end ---------------------------------------------------------------------------
SMALL = [
    "dataset.num_train=8",
    "dataset.num_val=4",
    "dataset.num_test=4",
    "dataset.image_size=96",
    "dataset.batch_size=4",
]


@pytest.mark.slow
def test_detection_sweep_writes_map_columns_and_wandb_images(run_lga, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_lga(
        "-m", "task=detection", "attention=none,lga", *SMALL, "trainer=debug", "trainer.limit_val_batches=1",
        "logger=wandb", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["attention"] for r in rows] == ["none", "lga"] and all(r["status"] == "ok" for r in rows)
    assert {"test_map50", "test_map", "test_map_small", "val_map50_best", "params_M", "gflops"} <= set(rows[0])
    assert "test_top1" not in rows[0]
    for row in rows:
        assert 0 <= float(row["test_map50"]) <= 100 and float(row["params_M"]) > 1.0
    result = json.loads((sweep / "0/result.json").read_text())
    assert result["task"] == "detection" and "test/map_small" in result["metrics"]
    # validation images with boxes went to W&B (offline: media files in the run directory)
    media = list(sweep.glob("*/wandb/offline-run-*/files/media/images/val/examples_*"))
    boxes = list(sweep.glob("*/wandb/offline-run-*/files/media/metadata/boxes2D/val/*"))
    assert media and boxes, sorted(str(p) for p in sweep.glob("0/wandb/offline-run-*/files/**/*"))


def test_detection_dataset_with_classification_model_is_a_clear_error(run_lga):
    proc = run_lga("dataset=tiny_objects", "logger=none")
    assert proc.returncode == 1
    assert (
        "dataset=tiny_objects is a detection dataset, but the model is for classification: add task=detection"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_default_detection_config_is_paper_scale(compose_cfg):
    from hydra.utils import instantiate

    from lga.train import build_model

    cfg = compose_cfg("task=detection")
    assert cfg.hydra.runtime.choices.model == "detection" and cfg.dataset.name == "tiny_objects"
    assert cfg.backbone.stem_stride == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(cfg, instantiate(cfg.dataset))
    assert isinstance(model, DetectionModule)
    assert 1.0e6 < model.cost["params"] < 1.4e6  # the paper's detector: about 1.2 M
