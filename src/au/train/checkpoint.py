"""Mid-training state in one safetensors file, so a killed training resumes bit-identically.

A training holds one or more networks, each with its optimiser (a classifier alone; a confident
classifier with its generator and discriminator). For the network named ``name`` the file holds
its parameters and buffers (``name/...``) and its Adam moment tensors (``name.optim/<param
index>/<key>``); beside them the torch RNG state (``rng/torch``) and, under early stopping, the best
classifier weights so far (``best/...``). Its metadata holds the step reached, the history so far
and a key identifying the job. It is replaced atomically, so a kill at any moment leaves either the
previous state or the new one.
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


Networks = dict[str, tuple[nn.Module, torch.optim.Optimizer]]
"""The networks of one training by name, each with its optimiser."""


def save_state(path: Path, networks: Networks, state: TrainState) -> None:
    """Write every network, its optimiser, the RNG and ``state`` to ``path``, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for net, (module, optimizer) in networks.items():
        tensors |= {f"{net}/{k}": v.detach().contiguous().clone() for k, v in module.state_dict().items()}
        for pid, pstate in optimizer.state_dict()["state"].items():
            for name, value in pstate.items():
                if torch.is_tensor(value):
                    tensors[f"{net}.optim/{pid}/{name}"] = value.detach().contiguous().clone()
                else:
                    scalars.setdefault(f"{net}.optim/{pid}", {})[name] = value
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


def load_state(path: Path, networks: Networks, job_key: str) -> TrainState | None:
    """Restore the networks, their optimisers and the RNG from ``path``; ``None`` when there is no usable
    state for this job."""
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
    scalars = json.loads(meta.get("optim_scalars", "{}"))
    for net, (module, optimizer) in networks.items():
        module.load_state_dict(_under(tensors, f"{net}/"))
        optim_state: dict[int, dict] = {}
        for key, value in _under(tensors, f"{net}.optim/").items():
            pid, name = key.split("/", 1)
            optim_state.setdefault(int(pid), {})[name] = value
        for key, values in scalars.items():
            if key.startswith(f"{net}.optim/"):
                optim_state.setdefault(int(key.rsplit("/", 1)[1]), {}).update(values)
        groups = optimizer.state_dict()["param_groups"]
        optimizer.load_state_dict({"state": optim_state, "param_groups": groups})
    torch.set_rng_state(tensors["rng/torch"])
    best = _under(tensors, "best/")
    return TrainState(
        step=int(meta["step"]), history=json.loads(meta["history"]), job_key=job_key, best=best or None
    )


def _under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose keys start with ``prefix``, keyed by the rest."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
