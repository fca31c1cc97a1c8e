"""Mid-training state in one safetensors file, so a killed training resumes bit-identically.

The file holds the model's parameters and buffers (``model/...``), Adam's moment tensors
(``optim/<param index>/<name>``), the torch RNG state (``rng/torch``) and, under early stopping,
the best weights so far (``best/...``); its metadata holds the
step reached, the history so far and a key identifying the job. It is replaced atomically, so a
kill at any moment leaves either the previous state or the new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn


@dataclass
class TrainState:
    step: int
    history: dict
    job_key: str
    best: dict[str, torch.Tensor] | None = None


def save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
    tensors = {f"model/{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    scalars: dict[str, dict] = {}
    for pid, pstate in optimizer.state_dict()["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim/{pid}/{name}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    tensors["rng/torch"] = torch.get_rng_state()
    for k, v in (state.best or {}).items():
        tensors[f"best/{k}"] = v.contiguous()
    meta = {
        "step": str(state.step),
        "history": json.dumps(state.history),
        "job_key": state.job_key,
        "optim_scalars": json.dumps(scalars),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, job_key: str
) -> TrainState | None:
    """Restore model, optimizer and RNG from ``path``; ``None`` when there is no usable state for this job."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if meta.get("job_key") != job_key:
            return None
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError):
        return None  # a damaged state file is ignored: training restarts from the beginning
    model.load_state_dict({k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")})
    scalars = json.loads(meta.get("optim_scalars", "{}"))
    optim_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, pid, name = key.split("/", 2)
            optim_state.setdefault(int(pid), {})[name] = value
    for pid, values in scalars.items():
        optim_state.setdefault(int(pid), {}).update(values)
    optimizer.load_state_dict({"state": optim_state, "param_groups": optimizer.state_dict()["param_groups"]})
    torch.set_rng_state(tensors["rng/torch"])
    best = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")}
    return TrainState(
        step=int(meta["step"]), history=json.loads(meta["history"]), job_key=job_key, best=best or None
    )
