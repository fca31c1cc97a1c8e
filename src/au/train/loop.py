"""The training loop: Adam on cross-entropy (or a :class:`Trainer`'s own step), seeded batch order,
resumable, for any ``nn.Module``.

Batches are drawn from the uint8 images and converted to float one batch at a time, so memory
does not grow with the dataset. Epoch ``e``'s batch order is a permutation seeded by
``(seed, e)``; dropout draws from torch's RNG, seeded by ``seed`` and saved in checkpoints. So a
run resumed from a checkpoint ends with the same weights, bit for bit, as one never interrupted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from au import progress
from au.data.dataset import ImageDataset, to_tensor
from au.errors import AUError
from au.models.layers import check_model_input
from au.train.augment import augment
from au.train.checkpoint import Networks, TrainState, load_state, save_state
from au.train.config import TrainConfig
from au.train.evaluation import evaluate

STATE_FILE = "train-state.safetensors"


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` did.

    ``history`` has one entry per validation point in lists ``epoch`` (fractional), ``step``,
    ``train_loss`` and ``train_accuracy`` (running, since the previous point), ``val_loss``,
    ``val_accuracy``, ``lr``, ``seconds``; ``step_loss`` holds every step's loss.
    ``stopped`` says why training ended: ``"epochs"``, ``"max_steps"`` or ``"early_stopping"``.
    ``best_step`` is the step whose weights the model holds at the end (the last step unless
    early stopping restored an earlier, better one).
    """

    steps: int
    epochs: float
    stopped: str
    best_step: int
    history: dict
    resumed_from_step: int


class Trainer:
    """What one optimiser step does: Adam on the cross-entropy of a batch (plain training).

    A training that adds networks or losses (the confident classifier of :mod:`au.generate`)
    subclasses it: :meth:`networks` names every network with its optimiser (all are checkpointed),
    :meth:`step` makes one step, ``losses`` names the extra running losses it adds to ``run`` (summed
    over examples, like ``loss``), which the history averages at each validation point, and
    :meth:`identity` is what it adds to the job's identity.
    """

    losses: tuple[str, ...] = ()

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def networks(self) -> Networks:
        return {"model": (self.model, self.optimizer)}

    def identity(self) -> dict:
        return {}

    def write(self, out: Path, history: dict) -> tuple[tuple[str, ...], dict]:
        """Write what the training made beside the classifier into ``out``; return (the files, what the
        manifest records of them)."""
        return (), {}

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, run: dict) -> tuple[float, torch.Tensor]:
        """One step on images ``x`` (B, C, H, W) and labels ``y`` (B,); returns (loss, logits (B, K) detached)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        self.optimizer.step()
        return loss.item(), logits.detach()


def planned_steps(n_train: int, config: TrainConfig) -> tuple[int, int]:
    """(steps per epoch, total steps) for ``n_train`` examples under ``config``."""
    per_epoch = math.ceil(n_train / config.batch_size)
    total = per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    return per_epoch, total


def learning_rate(step: int, total: int, config: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based) of ``total``: cosine decay to 0, or constant."""
    if config.schedule == "constant" or total <= 1:
        return config.lr
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * step / total))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The batch order of one epoch: a permutation of 0..n-1 seeded by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _new_history(losses: tuple[str, ...]) -> dict:
    keys = ("epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")
    return {
        **{k: [] for k in (*keys, *losses)},
        "step_loss": [],
        "_run": {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, **{k: 0.0 for k in losses}},
        "_stop": {"best_accuracy": None, "best_step": 0, "bad": 0, "stopped": None},
    }


def fit(
    model: nn.Module,
    train: ImageDataset,
    config: TrainConfig,
    val: ImageDataset | None = None,
    *,
    state_dir: Path | None = None,
    job_key: str = "",
    checkpoint_seconds: float = 60.0,
    show_progress: bool = True,
    on_eval: Callable[[dict], None] | None = None,
    trainer: Trainer | None = None,
) -> FitResult:
    """Train ``model`` in place on ``train`` with Adam and cross-entropy.

    Parameters
    ----------
    model : nn.Module
        Takes float32 (N, C, H, W) in [0, 1], returns logits (N, num_classes).
    train : ImageDataset
        Labelled training examples (all of them are used: subset before calling).
    config : TrainConfig
        ``epochs``, ``max_steps``, ``batch_size``, ``lr``, ``schedule``, ``seed``, ``eval_every``
        and ``patience`` are used here.
    val : ImageDataset, optional
        Evaluated every ``config.eval_every`` steps (default: every epoch); early stopping watches
        its accuracy.
    state_dir : Path, optional
        Where to keep a checkpoint (every ``checkpoint_seconds`` and at each validation point) and
        to resume from one written for the same ``job_key``.
    on_eval : callable, optional
        Called with the newest history entry at each validation point.
    trainer : Trainer, optional
        What a step does (default: :class:`Trainer`, Adam on cross-entropy); its extra losses join
        the history.
    """
    _check_training_data(model, train)
    per_epoch, total = planned_steps(len(train), config)
    early = config.patience is not None and val is not None and len(val) > 0
    trainer = trainer or Trainer(model, config)
    if trainer.model is not model:
        raise ValueError("fit: the trainer must train the model passed to fit")
    saver = _Checkpoints(Path(state_dir) / STATE_FILE if state_dir is not None else None, checkpoint_seconds)
    was_training = model.training

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        fresh = TrainState(0, _new_history(trainer.losses), job_key, None)
        state = saver.restore(trainer.networks(), job_key) or fresh
        start_step = state.step
        for net, _ in trainer.networks().values():
            net.train()
        with progress.bar(total, "train", "step", enabled=show_progress, initial=state.step) as pbar:
            loop = _Loop(trainer, train, val, config, per_epoch, total, early)
            loop.run(state, saver, pbar, on_eval)
    stop = state.history["_stop"]
    if early and state.best is not None and stop["best_step"] != state.step:
        model.load_state_dict(state.best)
    model.train(was_training)
    state.history.pop("_run", None)
    state.history.pop("_stop")
    if stop["stopped"] is None:
        budget_cut = (
            config.max_steps is not None and total == config.max_steps and total < per_epoch * config.epochs
        )
        stop["stopped"] = "max_steps" if budget_cut else "epochs"
    return FitResult(
        steps=state.step,
        epochs=state.step / per_epoch,
        stopped=stop["stopped"],
        best_step=stop["best_step"] if early and state.best is not None else state.step,
        history=state.history,
        resumed_from_step=start_step,
    )


def _check_training_data(model: nn.Module, train: ImageDataset) -> None:
    if len(train) == 0 or not train.has_labels:
        raise AUError(f"dataset {train.name!r} ({train.split}): training needs at least one labelled example")
    outputs = check_model_input(model, train)
    if int(train.labels.max()) >= outputs:
        raise AUError(
            f"dataset {train.name!r} has labels up to {int(train.labels.max())} but the model has {outputs} outputs; "
            f"build the model with num_classes={train.num_classes}"
        )


class _Checkpoints:
    """The training state in ``path`` (none when ``path`` is None): saved every ``seconds`` and at each
    validation point, restored when it was written for the same job."""

    def __init__(self, path: Path | None, seconds: float) -> None:
        self.path, self.seconds, self.last = path, seconds, time.monotonic()

    def restore(self, networks: Networks, job_key: str) -> TrainState | None:
        return load_state(self.path, networks, job_key) if self.path is not None else None

    def due(self) -> bool:
        return self.path is not None and time.monotonic() - self.last > self.seconds

    def save(self, networks: Networks, state: TrainState) -> None:
        if self.path is not None:
            save_state(self.path, networks, state)
            self.last = time.monotonic()


class _Loop:
    """The steps of one fit: seeded batches, the trainer's step, validation points, early stopping."""

    def __init__(
        self, trainer: Trainer, train: ImageDataset, val, config: TrainConfig, per_epoch, total, early
    ):
        self.trainer, self.model, self.train, self.val, self.config = (
            trainer,
            trainer.model,
            train,
            val,
            config,
        )
        self.per_epoch, self.total, self.early = per_epoch, total, early
        self.interval = config.eval_every or per_epoch
        self.images = torch.from_numpy(train.images)  # (N, H, W, C) uint8, shared with the dataset
        self.labels = torch.from_numpy(train.labels)  # (N,) int64

    def step(self, step: int, order: np.ndarray, run: dict) -> tuple[float, float]:
        """One optimiser step on batch ``step`` of its epoch's ``order``; returns (loss, learning rate)."""
        b = step % self.per_epoch
        idx = torch.from_numpy(order[b * self.config.batch_size : (b + 1) * self.config.batch_size])
        x = augment(to_tensor(self.images[idx]), self.config.augment, self.config.seed, step)  # (B, C, H, W)
        y = self.labels[idx]  # (B,)
        lr = learning_rate(step, self.total, self.config)
        loss_value, logits = self.trainer.step(x, y, lr, run)
        run["loss"] += loss_value * len(y)
        run["correct"] += int((logits.argmax(1) == y).sum())
        run["seen"] += len(y)
        return loss_value, lr

    def run(self, state: TrainState, saver: _Checkpoints, pbar, on_eval) -> None:
        """Steps from ``state.step`` until the budget ends or early stopping stops; ``state`` is updated in place."""
        history = state.history
        run, stop = history["_run"], history["_stop"]
        order_epoch, order = -1, np.empty(0, dtype=np.int64)
        tick = time.perf_counter()
        while state.step < self.total and stop["stopped"] is None:
            epoch = state.step // self.per_epoch
            if epoch != order_epoch:
                order_epoch, order = epoch, epoch_order(self.config.seed, epoch, len(self.train))
            loss_value, lr = self.step(state.step, order, run)
            state.step += 1
            history["step_loss"].append(loss_value)
            pbar.update(1)
            if state.step % self.interval == 0 or state.step == self.total:
                run["seconds"] += time.perf_counter() - tick
                _validation_point(history, state.step, self.per_epoch, lr, self.trainer, self.val)
                if self.early:
                    state.best = _watch(history, state.step, self.model, state.best, self.config.patience)
                pbar.set_postfix_str(_postfix(history))
                if on_eval is not None:
                    on_eval({k: v[-1] for k, v in history.items() if isinstance(v, list) and v})
                saver.save(self.trainer.networks(), state)
                tick = time.perf_counter()
            elif saver.due():
                run["seconds"] += time.perf_counter() - tick
                saver.save(self.trainer.networks(), state)
                tick = time.perf_counter()


def _validation_point(
    history: dict, step: int, per_epoch: int, lr: float, trainer: Trainer, val: ImageDataset | None
) -> None:
    run, model = history["_run"], trainer.model
    history["epoch"].append(step / per_epoch)
    history["step"].append(step)
    history["train_loss"].append(run["loss"] / max(run["seen"], 1))
    history["train_accuracy"].append(run["correct"] / max(run["seen"], 1))
    history["lr"].append(lr)
    history["seconds"].append(run["seconds"])
    for key in trainer.losses:
        history[key].append(run[key] / max(run["seen"], 1))
        run[key] = 0.0
    if val is not None and len(val):
        ev = evaluate(model, val)
        history["val_loss"].append(ev.loss)
        history["val_accuracy"].append(ev.accuracy)
        model.train()
    else:
        history["val_loss"].append(None)
        history["val_accuracy"].append(None)
    run.update(loss=0.0, correct=0, seen=0)


def _watch(history: dict, step: int, model: nn.Module, best: dict | None, patience: int) -> dict | None:
    """Early stopping on validation accuracy: keep the weights of the best evaluation, the later one on a
    tie, and stop after ``patience`` evaluations below it.

    Accuracy, not loss: on the small validation carve-outs of small subsets the loss rises from
    over-confidence on one or two examples long before accuracy stops improving, and stopping on it
    leaves those models under-trained. Taking the later of equal scores keeps training through plateaus.
    """
    stop = history["_stop"]
    accuracy = history["val_accuracy"][-1]
    if stop["best_accuracy"] is None or accuracy >= stop["best_accuracy"]:
        stop.update(best_accuracy=accuracy, best_step=step, bad=0)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    stop["bad"] += 1
    if stop["bad"] >= patience:
        stop["stopped"] = "early_stopping"
    return best


def _postfix(history: dict) -> str:
    text = f"loss {history['train_loss'][-1]:.4f}"
    if history["val_accuracy"][-1] is not None:
        text += f" val_acc {history['val_accuracy'][-1]:.4f}"
    return text
