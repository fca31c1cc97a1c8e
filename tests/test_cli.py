"""The CLI: user errors are one line on stderr, a non-zero exit and no traceback; nothing written is damaged."""

from __future__ import annotations

import numpy as np
import pytest

from au.cli import main
from conftest import run_au


def _one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def npz_data(tmp_path_factory):
    """A tiny labelled dataset with train and test splits, as an npz spec."""
    from conftest import blob_images

    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    x, y = blob_images(60, 3, shape=(28, 28, 1))
    xt, yt = blob_images(30, 3, shape=(28, 28, 1), seed=1)
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    return f"npz:{path}"


def test_help_lists_subcommands():
    from au.cli import COMMANDS

    proc = run_au("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


_HELP_WITHOUT_TORCH = """
import sys
from au.cli import main
try:
    main([sys.argv[1], "--help"])
except SystemExit as e:
    assert e.code == 0, e.code
heavy = sorted(m for m in ("torch", "numpy", "pyarrow", "sklearn", "matplotlib", "faiss") if m in sys.modules)
print(",".join(heavy) or "light")
"""


@pytest.mark.parametrize(
    "command", ["train", "ablate", "curve", "record", "score", "gold", "explain", "perturb", "demo"]
)
def test_help_loads_neither_torch_nor_the_stage(command):
    """``au COMMAND --help`` answers from the command's arguments alone: its defaults come from the
    configuration dataclasses, and nothing heavy is imported until the command runs."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _HELP_WITHOUT_TORCH, command], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "light"


def test_numeric_options_are_checked_by_argparse(tmp_path):
    """Every numeric option is refused the same way: one line, exit status 2, nothing written."""
    for args in (
        ["train", "--model", "mnist-cnn", "--data", "mnist", "--lr", "-1"],
        ["train", "--model", "mnist-cnn", "--data", "mnist", "--val-fraction", "1"],
        ["train", "--model", "mnist-cnn", "--data", "mnist", "--seed", "-2"],
        ["ablate", "--model", "mnist-cnn", "--data", "mnist", "--ablate-class", "-1"],
        ["curve", str(tmp_path), "--targets", "0.9,1"],
        ["score", "--run", str(tmp_path), "--val-size", "x"],
        ["gold", "--scores", str(tmp_path), "--epsilon", "0"],
        ["--threads", "0", "models"],
    ):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--out", str(tmp_path / "o")] if args[0] != "--threads" else args)
        assert exc.value.code == 2, args
    assert not (tmp_path / "o").exists()


def test_unknown_model(tmp_path):
    _one_line_error(
        run_au("train", "--model", "resnet", "--data", "mnist", "--out", str(tmp_path / "x")),
        "unknown model 'resnet'",
    )


def test_keep_outside_unit_interval(tmp_path):
    proc = run_au(
        "train", "--model", "mnist-cnn", "--data", "mnist", "--keep", "1.5", "--out", str(tmp_path / "x")
    )
    _one_line_error(proc, "--keep", "not in (0, 1]")
    assert proc.returncode == 2


def test_missing_data_path(tmp_path):
    proc = run_au(
        "train",
        "--model",
        "mnist-cnn",
        "--data",
        f"mnist:{tmp_path / 'nowhere'}",
        "--out",
        str(tmp_path / "x"),
    )
    _one_line_error(proc, "not a directory")
    assert proc.returncode == 1


def test_data_not_matching_model(tmp_path):
    proc = run_au(
        "train", "--model", "mnist-cnn", "--data", "noise-uniform:n=10", "--out", str(tmp_path / "x")
    )
    _one_line_error(proc, "no labels")


@pytest.mark.slow
def test_train_then_conflicting_run_leaves_data_untouched(tmp_path, npz_data):
    out = tmp_path / "run"
    proc = run_au(
        "--quiet", "train", "--model", "mnist-cnn", "--data", npz_data, "--max-steps", "3", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = run_au(
        "--quiet", "train", "--model", "mnist-cnn", "--data", npz_data, "--max-steps", "3", "--out", str(out)
    )
    assert again.returncode == 0
    conflict = run_au(
        "--quiet",
        "train",
        "--model",
        "mnist-cnn",
        "--data",
        npz_data,
        "--seed",
        "1",
        "--max-steps",
        "3",
        "--out",
        str(out),
    )
    _one_line_error(conflict, "already holds a finished run of mnist-cnn on npz:")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_in_process_errors_return_codes(tmp_path, capsys):
    assert main(["train", "--model", "nope", "--data", "mnist", "--out", str(tmp_path)]) == 1
    assert "unknown model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model"])
    assert exc.value.code == 2


def test_models_and_datasets_listings():
    assert "conv2" in run_au("models").stdout
    assert "fashion-mnist" in run_au("datasets").stdout
