import gzip

import pytest
import torch

from lga.data import DatasetFileError, IDXClassificationDataModule, read_idx, write_idx
from tests.conftest import ROOT


def test_idx_round_trip(tmp_path):
    images = torch.randint(0, 256, (7, 5, 4), dtype=torch.uint8)
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        write_idx(tmp_path / name, images)
        assert torch.equal(read_idx(tmp_path / name), images)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, torch.zeros(50, 28, 28, dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DatasetFileError, match=f"{path} is truncated or not a valid gzip file"):
        read_idx(path)


def test_short_idx_payload_names_the_file(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, torch.zeros(10, dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DatasetFileError, match=f"{path} holds 15 bytes but its header \\(10,\\) needs 18"):
        read_idx(path)


def test_not_idx(tmp_path):
    path = tmp_path / "notes.gz"
    path.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(DatasetFileError, match="is not an IDX file"):
        read_idx(path)


def _mnist_5k(**kw):
    return IDXClassificationDataModule(
        name="mnist_5k",
        search_dirs=[str(ROOT / "data/mnist_5k")],
        train_files=["train-5k-images-idx3-ubyte", "train-5k-labels-idx1-ubyte"],
        test_files=["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
        **kw,
    )


def test_embedded_mnist_splits():
    dm = _mnist_5k(val_size=0.1)
    dm.setup()
    train, val, test = (dm.data[s].tensors for s in ("train", "val", "test"))
    assert (len(train[0]), len(val[0]), len(test[0])) == (4500, 500, 10000)
    assert train[0].dtype == torch.uint8 and train[0].shape[1:] == (1, 28, 28)
    assert set(test[1].tolist()) == set(range(10))
    # the split is fixed by split_seed, independent of the global RNG
    torch.manual_seed(123)
    again = _mnist_5k(val_size=0.1)
    again.setup()
    assert torch.equal(again.data["val"].tensors[1], val[1])
    other = _mnist_5k(val_size=0.1, split_seed=1)
    other.setup()
    assert not torch.equal(other.data["val"].tensors[1], val[1])


def test_preprocess_pads_without_resampling():
    dm = _mnist_5k(image_size=32, mean=0.0, std=1.0)
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    y = dm.preprocess(x)
    assert y.shape == (2, 1, 32, 32)
    assert y[:, :, 2:30, 2:30].eq(1).all() and y[:, :, :2].eq(0).all()


def test_missing_files_offline_error_says_where(tmp_path):
    dm = IDXClassificationDataModule(
        name="mnist",
        search_dirs=[str(tmp_path / "MNIST/raw")],
        train_files=["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
        test_files=["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
        download="MNIST",
        download_root=str(tmp_path),
        download_url="https://127.0.0.1:9/",  # nothing listens there: offline
        hint="Offline, `dataset=mnist_5k` works.",
    )
    with pytest.raises(DatasetFileError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "missing train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte" in message
    assert str(tmp_path / "MNIST/raw") in message and "offline" in message and "dataset=mnist_5k" in message


def test_label_count_mismatch_names_both_files(tmp_path):
    write_idx(tmp_path / "tr-images", torch.zeros(20, 28, 28, dtype=torch.uint8))
    write_idx(tmp_path / "tr-labels", torch.zeros(19, dtype=torch.uint8))
    write_idx(tmp_path / "te-images", torch.zeros(5, 28, 28, dtype=torch.uint8))
    write_idx(tmp_path / "te-labels", torch.zeros(5, dtype=torch.uint8))
    dm = IDXClassificationDataModule(
        name="mine",
        search_dirs=[str(tmp_path)],
        train_files=["tr-images", "tr-labels"],
        test_files=["te-images", "te-labels"],
    )
    with pytest.raises(
        DatasetFileError,
        match=rf"{tmp_path}/tr-images holds images \(20, 28, 28\) but {tmp_path}/tr-labels labels \(19,\)",
    ):
        dm.setup()


def test_pad_crop_flip_is_a_padded_crop_mirrored_or_not():
    from lga.data.classification import pad_crop_flip

    x = torch.randn(16, 1, 8, 8)
    torch.manual_seed(3)
    out = pad_crop_flip(x, pad_value=-9.0, pad=2)
    torch.manual_seed(3)  # the same draws, taken one image at a time
    offsets, flips = torch.randint(0, 5, (2, 16)), torch.rand(16) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-9.0)
    for i in range(16):
        crop = padded[i, :, offsets[0, i] : offsets[0, i] + 8, offsets[1, i] : offsets[1, i] + 8]
        assert torch.equal(out[i], crop.flip(-1) if flips[i] else crop)
    assert flips.any() and not flips.all() and (offsets != 2).any()  # the draws did move and mirror some


def test_augmentation_only_in_training_and_a_typo_lists_the_choices():
    with pytest.raises(ValueError, match="augment must be one of none, pad_crop_flip"):
        _mnist_5k(augment="flip")
    dm = _mnist_5k(augment="pad_crop_flip")
    batch = (torch.full((4, 1, 28, 28), 200, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    assert torch.equal(dm.on_after_batch_transfer(batch, 0)[0], dm.preprocess(batch[0]))  # no trainer: as evaluated
