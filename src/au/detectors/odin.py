"""ODIN: temperature scaling and input pre-processing (Liang et al. 2018, arXiv 1706.02690)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from au.detectors.base import Consumes, Detector
from au.detectors.images import numbered_batches, sign_step
from au.models.layers import eval_mode
from au.ood.metrics import fpr_at_tpr

EPSILON_GRID = (0.0, 0.0005, 0.001, 0.0014, 0.002, 0.0024, 0.005, 0.01, 0.05, 0.1, 0.2)


class Odin(Detector):
    """score(x) = max_k softmax(f(x_hat) / T)_k with x_hat = x - eps * sign(-grad_x log S_yhat(x; T)).

    The input is nudged to raise the temperature-scaled confidence of the predicted class, which
    raises in-distribution scores more than out-of-distribution ones. Works on images (uint8, the
    model's own input form), so it holds the model: ``Odin(model)``.

    Parameters
    ----------
    model : nn.Module
    temperature : float
        T (paper: 1000).
    epsilon : float
        Step size on the [0, 1] pixel scale (paper's default 0.0014), used unless it is tuned.
    epsilons : tuple of float
        The grid tried when ``fit`` gets in-distribution and OOD validation images
        (``X_val``, ``X_val_ood``): the one with the lowest FPR at 95% TPR on them is used.
    batch_size : int

    Fitted attributes: ``epsilon_`` (the step used), ``tuning_`` (FPR at 95% TPR per epsilon tried,
    when tuned).
    """

    name = "odin"
    consumes = Consumes("images", validation="optional")
    score_unit = "probability"
    _reported = ("epsilon_",)
    _constraints = {
        "model": (lambda v: isinstance(v, nn.Module), "a torch.nn.Module: Odin(model)"),
        "temperature": (lambda v: v > 0, "a number > 0"),
        "epsilon": (lambda v: v >= 0, "a number >= 0"),
        "epsilons": (lambda v: len(v) >= 1 and all(e >= 0 for e in v), "a non-empty tuple of numbers >= 0"),
        "batch_size": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    }

    def __init__(
        self,
        model: nn.Module | None = None,
        temperature: float = 1000.0,
        epsilon: float = 0.0014,
        epsilons: tuple[float, ...] = EPSILON_GRID,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.temperature = temperature
        self.epsilon = epsilon
        self.epsilons = epsilons
        self.batch_size = batch_size

    def _fit(self, x: np.ndarray, y=None, x_val=None, x_val_ood=None) -> None:
        """Nothing to learn from the training images; with OOD validation images, tune epsilon.

        The paper's criterion: the grid value with the lowest FPR at 95% TPR on (``x_val``,
        ``x_val_ood``), the caller's validation data, never the test sets.
        """
        self.epsilon_ = float(self.epsilon)
        self.__dict__.pop("tuning_", None)  # a refit without OOD validation data keeps no old tuning
        if x_val is None or x_val_ood is None:
            return
        self.tuning_ = {
            float(eps): fpr_at_tpr(self._scores(x_val, eps), self._scores(x_val_ood, eps))
            for eps in self.epsilons
        }
        self.epsilon_ = min(self.tuning_, key=lambda e: (self.tuning_[e], e))

    def _scores(self, images: np.ndarray, epsilon: float) -> np.ndarray:
        t = float(self.temperature)
        out = np.zeros(len(images))  # filled batch by batch: kept batches would fragment the heap
        with eval_mode(self.model) as model:
            for lo, x in numbered_batches(images, self.batch_size):

                def loss(inp: torch.Tensor) -> torch.Tensor:
                    logits = model(inp) / t
                    return F.cross_entropy(logits, logits.argmax(dim=1), reduction="none")

                x_hat = sign_step(x, loss, epsilon)
                with torch.no_grad():
                    out[lo : lo + len(x)] = (
                        F.softmax(model(x_hat).double() / t, dim=1).max(dim=1).values.numpy()
                    )
        return out

    def _score(self, x: np.ndarray, pred=None) -> np.ndarray:
        return self._scores(x, self.epsilon_)
