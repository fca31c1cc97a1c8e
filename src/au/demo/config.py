"""Settings of ``au demo``: one frozen dataclass, defaults in one place (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from au.score.config import DEFAULT_OOD

OUT = "runs/demo"
"""Where ``au demo`` writes when no ``--out`` is given."""


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; the defaults are the full demo (under 10 minutes on 2 cores)."""

    model: str = "mnist-cnn"
    data: str = "mnist"
    seed: int = 0
    keep: float = 1.0
    epochs: int | None = None
    max_steps: int | None = None
    sweep_fractions: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
    sweep_trials: int = 1
    sweep_max_steps: int = 300
    # the held-out checks (au curve's, and gold's needed data) fit on fractions <= this, predict the rest
    sweep_holdout_max: float = 0.02
    workers: int = 2
    record_layers: tuple[str, ...] = ("conv1", "conv2", "fc1", "fc1_relu", "logits")
    record_limit: int | None = None
    score_ood: tuple[str, ...] = DEFAULT_OOD
    score_limit: int | None = 2000
    score_fit_limit: int | None = 20000
    gold_epsilons: tuple[float, ...] = (0.02, 0.05, 0.1)
    gold_delta: float = 0.05
    gold_splits: int = 200
    gold_method: str = "both"  # the demo shows Learn then Test beside SGR
    explain_examples: int = 3
    explain_units: int = 3
    perturb_layers: tuple[str, ...] = ("fc1", "conv2")
    perturb_fit_limit: int = 5000
