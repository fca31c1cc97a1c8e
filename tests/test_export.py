"""``au export`` and the images table: schema and footer, exact round trips through ``parquet:``, the ids
of CIFAR-shaped tables, and an output file that is whole or absent, never something else."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from au import AUError, data
from au.cli import main
from au.data import images_table
from au.data.export_job import export
from au.data.images_table import (
    METADATA_KEY,
    ROW_GROUP,
    SCHEMA,
    check_images_table,
    decode_image,
    write_images_table,
)
from conftest import SHARED_CIFAR, tiny_net


def _footer(path) -> dict:
    return json.loads(pq.read_schema(path).metadata[METADATA_KEY.encode()])


def _one_line(error: BaseException, *fragments: str) -> None:
    text = str(error)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text


# ---------------------------------------------------------------- the table


def test_schema_and_footer(tmp_path):
    digits = data.load("digits", "all")
    meta = export(digits, tmp_path / "d.parquet", limit=100, show_progress=False)
    file = pq.ParquetFile(tmp_path / "d.parquet")
    assert file.schema_arrow.equals(SCHEMA)  # names, types and nullability; metadata aside
    assert _footer(tmp_path / "d.parquet") == meta
    assert meta == {
        "format": "au-images/1",
        "dataset": "digits",
        "split": "all",
        "limit": 100,
        "rows": 100,
        "shape": [28, 28, 1],
        "class_names": [str(d) for d in range(10)],
        "fingerprint": digits.subset(np.arange(100)).fingerprint(),
    }
    table = file.read()
    assert table.column("example_id").to_pylist() == digits.ids[:100].tolist()
    assert table.column("label").to_pylist() == digits.labels[:100].tolist()
    assert table.column("label_name").to_pylist() == [str(y) for y in digits.labels[:100]]
    png = table.column("image")[7].as_py()
    assert png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as im:
        assert (im.mode, im.size) == ("L", (28, 28))
        np.testing.assert_array_equal(np.asarray(im), digits.images[7, :, :, 0])


def test_colour_and_unlabelled_rows(tmp_path):
    noise = data.load("noise-uniform:shape=32x32x3:n=20", "all")
    meta = export(noise, tmp_path / "n.parquet", show_progress=False)
    assert meta["shape"] == [32, 32, 3] and meta["class_names"] == [] and meta["limit"] is None
    table = pq.read_table(tmp_path / "n.parquet")
    assert set(table.column("label").to_pylist()) == {-1}
    assert set(table.column("label_name").to_pylist()) == {None}
    with Image.open(io.BytesIO(table.column("image")[0].as_py())) as im:
        assert im.mode == "RGB"


def test_row_groups_split_the_file(tmp_path):
    noise = data.load(f"noise-gaussian:n={2 * ROW_GROUP + 4}", "all")
    export(noise, tmp_path / "n.parquet", show_progress=False)
    file = pq.ParquetFile(tmp_path / "n.parquet")
    assert ROW_GROUP == 2048
    assert [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)] == [2048, 2048, 4]
    write_images_table(noise.subset(np.arange(250)), tmp_path / "s.parquet", row_group_size=100)
    small = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert [small.row_group(i).num_rows for i in range(small.num_row_groups)] == [100, 100, 50]


@pytest.mark.parametrize("mode", ["L", "RGB", "RGB+tRNS", "P", "LA", "RGBA", "I;16", "1"])
def test_decode_image_gives_pillows_pixels_for_every_png_kind(mode, monkeypatch):
    """OpenCV decodes the plain PNGs (8-bit grey or RGB, as asked, no transparency); every kind gives Pillow's pixels."""
    rgb = np.random.default_rng(1).integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
    base = mode.split("+")[0]
    image = Image.fromarray(rgb)
    image = image.convert("L").convert("I;16") if base == "I;16" else image.convert(base)
    extra = {"transparency": (0, 0, 0)} if mode.endswith("tRNS") else {}
    buf = io.BytesIO()
    image.save(buf, format="PNG", **extra)
    calls = []
    imdecode = images_table.cv2.imdecode
    monkeypatch.setattr(images_table.cv2, "imdecode", lambda *a: calls.append(1) or imdecode(*a))
    for channels, pillow_mode in ((1, "L"), (3, "RGB")):
        decoded = decode_image(buf.getvalue(), channels, "here")
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            expected = np.array(im.convert(pillow_mode)).reshape(6, 7, channels)
        assert decoded.dtype == np.uint8 and decoded.flags.writeable and decoded.flags.c_contiguous
        np.testing.assert_array_equal(decoded, expected)
    assert len(calls) == (mode in ("L", "RGB")), calls  # OpenCV for the channels the PNG holds, and only then


def test_a_png_larger_than_cifar_goes_to_pillow(monkeypatch):
    """OpenCV only wins on small images: a 33x32 plain PNG is decoded by Pillow, to the same pixels."""
    image = np.random.default_rng(3).integers(0, 256, size=(33, 32, 1), dtype=np.uint8)
    monkeypatch.setattr(images_table.cv2, "imdecode", lambda *a: pytest.fail("OpenCV used"))
    np.testing.assert_array_equal(decode_image(images_table.encode_image(image), 1, "here"), image)


def test_decode_image_channels_and_errors():
    rgb = np.random.default_rng(0).integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    png = images_table.encode_image(rgb)
    colour = decode_image(png, 3, "here")
    np.testing.assert_array_equal(colour, rgb)
    grey = decode_image(png, 1, "here")
    assert grey.shape == (4, 5, 1) and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey[..., 0], np.asarray(Image.fromarray(rgb).convert("L")))
    assert colour.flags.writeable and grey.flags.writeable
    with pytest.raises(AUError) as e:
        decode_image(b"not an image", 3, "t.parquet (train row 4)")
    _one_line(e.value, "t.parquet (train row 4)", "cannot decode")


def test_a_damaged_png_is_one_line_and_nothing_else(capfd):
    """A PNG whose header passes but whose data is cut: one error naming the row, no decoder's own warnings."""
    image = np.random.default_rng(2).integers(0, 256, size=(28, 28, 1), dtype=np.uint8)
    png = images_table.encode_image(image)
    data = png.find(b"IDAT") + 10  # a byte inside the compressed pixels
    flipped = png[:data] + bytes([png[data] ^ 0xFF]) + png[data + 1 :]
    for damaged in (png[:60], png[:40] + b"x" * 10 + png[50:], flipped):
        with pytest.raises(AUError) as e:
            decode_image(damaged, 1, "t.parquet (train row 4)")
        _one_line(e.value, "t.parquet (train row 4)", "cannot decode")
    no_end = png[: png.find(b"IEND") - 4]  # Pillow reads it whole without its end marker
    np.testing.assert_array_equal(decode_image(no_end, 1, "here"), image)
    assert capfd.readouterr().err == ""


# ---------------------------------------------------------------- round trips through parquet:


@pytest.mark.parametrize(
    "spec,split,limit",
    [("digits", "all", None), ("noise-uniform:shape=32x32x3:n=50", "all", None), ("mnist", "test", 300)],
)
def test_round_trip_gives_the_same_examples(tmp_path, spec, split, limit):
    original = data.load(spec, split)
    expected = original.subset(np.arange(limit)) if limit else original
    meta = export(original, tmp_path / "t.parquet", limit=limit, show_progress=False)
    back_spec = f"parquet:{tmp_path / 't.parquet'}"
    assert data.splits(back_spec) == (split,)
    back = data.load(back_spec, split)
    np.testing.assert_array_equal(back.images, expected.images)  # PNG is lossless
    assert back.images.dtype == np.uint8 and back.images.flags.writeable
    np.testing.assert_array_equal(back.ids, expected.ids)
    np.testing.assert_array_equal(back.labels, expected.labels)
    assert back.class_names == expected.class_names and back.split == split
    assert back.fingerprint() == expected.fingerprint() == meta["fingerprint"]


def test_record_reads_the_same_examples_from_the_table(tmp_path):
    """``au record --data parquet:...`` sees what ``--data digits`` sees: equal ids, labels and activations."""
    from au import activations
    from au.activations import RecordConfig, record

    digits = data.load("digits:size=8x8", "all")
    export(digits, tmp_path / "d.parquet", show_progress=False)
    back = data.load(f"parquet:{tmp_path / 'd.parquet'}", "all")
    config = RecordConfig(layers=("conv1", "logits"), limit=200)
    model = tiny_net(num_classes=10)
    record(model, digits, tmp_path / "a", config, show_progress=False)
    record(model, back, tmp_path / "b", config, show_progress=False)
    a, b = activations.open(tmp_path / "a"), activations.open(tmp_path / "b")
    for layer in ("conv1", "logits"):
        la, lb = a.layer(layer), b.layer(layer)
        np.testing.assert_array_equal(la.ids, lb.ids)
        np.testing.assert_array_equal(la.labels, lb.labels)
        # equal pixels (test above); CPU kernels may round the last bit differently with the buffer's
        # alignment, so activations are compared to float32 precision, as test_activations does
        np.testing.assert_allclose(la.values, lb.values, rtol=1e-5, atol=1e-6)


def _cifar_shaped(path) -> dict[str, np.ndarray]:
    """A tiny table shaped like cifar10-jpeg.parquet: JPEG bytes, int8 label, label_name, split, source_index."""
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird"]
    rows = [("test", k, i) for k in range(3) for i in range(2)] + [
        ("train", k, i) for k in range(3) for i in range(3)
    ]
    images = rng.integers(0, 256, size=(len(rows), 32, 32, 3), dtype=np.uint8)
    blobs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=90)
        blobs.append(buf.getvalue())
    table = pa.table(
        {
            "image": pa.array(blobs, pa.binary()),
            "label": pa.array([k for _, k, _ in rows], pa.int8()),
            "label_name": pa.array([names[k] for _, k, _ in rows]).dictionary_encode(),
            "split": pa.array([s for s, _, _ in rows]).dictionary_encode(),
            "source_index": pa.array([i for _, _, i in rows], pa.int32()),
        }
    )
    pq.write_table(table, path)


def test_cifar_shaped_table_gives_the_cifar10_ids(tmp_path):
    path = tmp_path / "c.parquet"
    _cifar_shaped(path)
    assert data.splits(f"parquet:{path}") == ("train", "test")  # train first, as every source gives them
    info = check_images_table(path)
    assert info["shape"] == [32, 32, 3] and info["channels"] == 3 and info["metadata"] is None
    for split in ("train", "test"):
        ours = data.load(f"parquet:{path}", split)
        cifar = data.load(f"cifar10:{path}", split)
        np.testing.assert_array_equal(ours.ids, cifar.ids)
        np.testing.assert_array_equal(ours.labels, cifar.labels)
        np.testing.assert_array_equal(ours.images, cifar.images)  # the same decoder
        assert ours.class_names == cifar.class_names == ("airplane", "automobile", "bird")
    assert data.load(f"parquet:{path}", "test").ids.tolist()[:3] == [
        "test/airplane/0",
        "test/airplane/1",
        "test/automobile/0",
    ]


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="shared CIFAR-10 Parquet not present on this machine")
def test_real_cifar_table_is_readable():
    info = check_images_table(SHARED_CIFAR)
    assert info["rows"] == 60000 and info["shape"] == [32, 32, 3]
    assert data.splits(f"parquet:{SHARED_CIFAR}") == ("train", "test")


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="shared CIFAR-10 Parquet not present on this machine")
def test_real_cifar_ids_agree_with_the_cifar10_loader():
    ours = data.load(f"parquet:{SHARED_CIFAR}", "test")
    cifar = data.load(f"cifar10:{SHARED_CIFAR}", "test")
    np.testing.assert_array_equal(ours.ids, cifar.ids)
    np.testing.assert_array_equal(ours.images, cifar.images)
    assert ours.fingerprint() == cifar.fingerprint()


# ---------------------------------------------------------------- what the reader refuses


def test_table_without_image_column_is_one_line(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"example_id": ["a", "b"], "label": [0, 1]}), path)
    for call in (lambda: check_images_table(path), lambda: data.load(f"parquet:{path}", "all")):
        with pytest.raises(AUError) as e:
            call()
        _one_line(e.value, str(path), "'image' column")


def test_table_without_ids_is_one_line(tmp_path):
    path = tmp_path / "x.parquet"
    png = images_table.encode_image(np.zeros((2, 2, 1), np.uint8))
    pq.write_table(pa.table({"image": [png], "label": [0], "split": ["train"]}), path)
    with pytest.raises(AUError) as e:
        check_images_table(path)
    _one_line(e.value, str(path), "example_id", "source_index")


@pytest.mark.parametrize("content", [None, b"not parquet"])
def test_missing_or_foreign_file_is_one_line(tmp_path, content):
    path = tmp_path / "x.parquet"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AUError) as e:
        data.load(f"parquet:{path}", "all")
    _one_line(e.value, str(path))


# ---------------------------------------------------------------- the command: whole, untouched or refused


def test_cli_prints_one_line_and_rerun_is_a_no_op(tmp_path, capsys):
    out = tmp_path / "m.parquet"
    argv = ["export", "--data", "mnist", "--split", "test", "--out", str(out), "--limit", "300"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip().splitlines() == [f"{out}: 300 rows, images 28x28x1 (H x W x C)"]
    before = (out.stat().st_mtime_ns, out.read_bytes())
    assert main(argv) == 0
    assert (out.stat().st_mtime_ns, out.read_bytes()) == before


def test_cli_user_errors_exit_1_and_usage_errors_exit_2(tmp_path, capsys):
    out = str(tmp_path / "x.parquet")
    for argv, fragment in [
        (["--data", "nope", "--split", "all"], "unknown dataset 'nope'"),
        (["--data", "mnist", "--split", "all-of-it"], "no 'all-of-it' split"),
        (["--data", "digits", "--split", "all", "--out", str(tmp_path)], "is a directory"),
    ]:
        full = ["export", *argv] + ([] if "--out" in argv else ["--out", out])
        assert main(full) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    with pytest.raises(SystemExit) as e:
        main(["export", "--data", "digits", "--split", "all", "--out", out, "--limit", "0"])
    assert e.value.code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["foreign", "plain-parquet", "other-export"])
def test_anything_else_at_out_is_refused_untouched(tmp_path, capsys, kind):
    out = tmp_path / "x.parquet"
    if kind == "foreign":
        out.write_bytes(b"my notes")
    elif kind == "plain-parquet":
        pq.write_table(pa.table({"a": [1]}), out)
    else:
        export(data.load("digits", "all"), out, limit=10, show_progress=False)
    before = (out.stat().st_mtime_ns, out.read_bytes())
    assert main(["export", "--data", "digits", "--split", "all", "--out", str(out), "--limit", "20"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    fragment = "different limit" if kind == "other-export" else "not an AU images table"
    assert len(err) == 1 and str(out) in err[0] and fragment in err[0], err
    assert (out.stat().st_mtime_ns, out.read_bytes()) == before


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_export_leaves_no_file(tmp_path, monkeypatch, error):
    """Killed after several row groups are on disk: nothing at --out, no temporary left beside it."""
    encode, calls = images_table.encode_image, []

    def failing(image):
        calls.append(1)
        if len(calls) == 450:
            raise error("killed")
        return encode(image)

    monkeypatch.setattr(images_table, "encode_image", failing)
    digits = data.load("digits", "all")
    with pytest.raises(error):
        write_images_table(digits, tmp_path / "d.parquet", row_group_size=100, show_progress=False)
    assert list(tmp_path.iterdir()) == []
    calls.clear()
    with pytest.raises(error):
        export(digits, tmp_path / "e.parquet", show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_export_help_loads_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys\nfrom au.cli import main\ntry:\n    main(['export', '--help'])\nexcept SystemExit as e:\n"
        "    assert e.code == 0\n"
        "print(','.join(m for m in ('torch', 'numpy', 'pyarrow', 'PIL') if m in sys.modules) or 'light')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "light"
