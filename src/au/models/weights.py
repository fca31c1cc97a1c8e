"""Weights as safetensors (never pickles), with the identity of the model they belong to.

The file's metadata records the architecture name, class count and input shape, so loading weights
into another architecture or class count fails with a message saying which, before any tensor is
copied. The metadata is one JSON string under the key ``au``: safetensors keeps metadata in a hash
map whose order varies between runs, and a single key keeps the file - and its SHA-256 - identical
for identical weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from au.errors import AUError
from au.files import sha256_file

FORMAT = "au-weights/1"


def model_identity(model: nn.Module) -> dict[str, str]:
    """What a weights file says about its model: name, class count, input shape."""
    name = getattr(model, "au_name", None) or f"{type(model).__module__}.{type(model).__qualname__}"
    ident = {"au.format": FORMAT, "au.model": name}
    if hasattr(model, "num_classes"):
        ident["au.num_classes"] = str(model.num_classes)
    if hasattr(model, "input_shape"):
        ident["au.input_shape"] = "x".join(str(s) for s in model.input_shape)
    return ident


def _describe(ident: dict[str, str]) -> str:
    parts = [repr(ident.get("au.model", "?"))]
    if "au.num_classes" in ident:
        parts.append(f"{ident['au.num_classes']} classes")
    if "au.input_shape" in ident:
        parts.append(f"input {ident['au.input_shape']}")
    return f"{parts[0]} ({', '.join(parts[1:])})" if len(parts) > 1 else parts[0]


def state_sha256(model: nn.Module) -> str:
    """SHA-256 of a model's state dict (names and tensor bytes): identifies weights held in memory."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_weights(model: nn.Module, path: Path, extra: dict[str, str] | None = None) -> str:
    """Write the model's state dict to ``path`` (atomically) and return the file's SHA-256."""
    path = Path(path)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {**model_identity(model), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"au": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)
    return sha256_file(path)


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata block of a safetensors file (no tensors are read)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size < 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(f.read(size))
    except FileNotFoundError:
        raise AUError(f"{path}: weights file not found") from None
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise AUError(f"{path}: not a safetensors file or damaged ({e})") from None
    meta = dict(header.get("__metadata__") or {})
    try:
        return json.loads(meta["au"]) if "au" in meta else meta
    except json.JSONDecodeError:
        raise AUError(f"{path}: damaged AU metadata in the weights file") from None


def load_weights(model: nn.Module, path: Path, expected_sha256: str | None = None) -> nn.Module:
    """Load ``path`` into ``model`` in place, after checking that the weights belong to it.

    Raises :class:`AUError` when the file is missing or damaged, its hash differs from
    ``expected_sha256``, or it was written for another architecture, class count or input shape.
    """
    path = Path(path)
    meta = read_metadata(path)
    if expected_sha256 is not None and sha256_file(path) != expected_sha256:
        raise AUError(f"{path}: SHA-256 differs from the run manifest; the weights were changed or damaged")
    ident = model_identity(model)
    for key in ("au.model", "au.num_classes", "au.input_shape"):
        if key in meta and key in ident and meta[key] != ident[key]:
            raise AUError(f"{path} holds weights of {_describe(meta)}, not of {_describe(ident)}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise AUError(f"{path}: damaged safetensors file ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}")
        if unexpected:
            details.append(f"unexpected {unexpected[:3]}")
        if wrong:
            k = wrong[0]
            details.append(
                f"{k} has shape {tuple(state[k].shape)} in the file but {tuple(own[k].shape)} in the model"
            )
        raise AUError(f"{path} does not fit model {_describe(ident)}: {'; '.join(details)}")
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    return model
