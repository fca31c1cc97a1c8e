"""Weights are safetensors with the model's identity; mismatches and damage give clear errors."""

from __future__ import annotations

import pytest
import torch

from au import AUError
from au.models import build_model, load_weights, read_metadata, save_weights, sha256_file


def test_round_trip(tmp_path):
    a = build_model("mnist-cnn", seed=1)
    sha = save_weights(a, tmp_path / "w.safetensors")
    assert sha == sha256_file(tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").read_bytes()[:1] != b"\x80"  # not a pickle
    b = load_weights(build_model("mnist-cnn", seed=2), tmp_path / "w.safetensors", expected_sha256=sha)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), k
    assert read_metadata(tmp_path / "w.safetensors")["au.model"] == "mnist-cnn"


def test_other_architecture_is_refused(tmp_path):
    save_weights(build_model("alexnet-cifar"), tmp_path / "w.safetensors")
    with pytest.raises(AUError, match="holds weights of 'alexnet-cifar'.*not of 'mnist-cnn'"):
        load_weights(build_model("mnist-cnn"), tmp_path / "w.safetensors")


def test_other_class_count_is_refused(tmp_path):
    save_weights(build_model("mnist-cnn", num_classes=10), tmp_path / "w.safetensors")
    with pytest.raises(AUError, match="10 classes.*not of 'mnist-cnn' \\(3 classes"):
        load_weights(build_model("mnist-cnn", num_classes=3), tmp_path / "w.safetensors")


def test_foreign_module_with_other_shapes_is_refused(tmp_path):
    save_weights(build_model("mnist-cnn"), tmp_path / "w.safetensors")
    other = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(AUError, match="holds weights of"):
        load_weights(other, tmp_path / "w.safetensors")


def test_corrupt_and_missing_files(tmp_path):
    path = tmp_path / "w.safetensors"
    sha = save_weights(build_model("mnist-cnn"), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AUError, match="damaged|SHA-256"):
        load_weights(build_model("mnist-cnn"), path)
    with pytest.raises(AUError, match="SHA-256 differs"):
        load_weights(build_model("mnist-cnn"), path, expected_sha256=sha)
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(AUError, match="not a safetensors file"):
        load_weights(build_model("mnist-cnn"), path)
    with pytest.raises(AUError, match="not found"):
        load_weights(build_model("mnist-cnn"), tmp_path / "missing.safetensors")
