"""ODIN: temperature scaling and input pre-processing (Liang et al. 2018, arXiv 1706.02690)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from au.detectors.base import Detector
from au.detectors.images import batches, check_images, sign_step
from au.errors import AUError
from au.models.layers import eval_mode

EPSILON_GRID = (0.0, 0.0005, 0.001, 0.0014, 0.002, 0.0024, 0.005, 0.01, 0.05, 0.1, 0.2)


class Odin(Detector):
    """score(x) = max_k softmax(f(x_hat) / T)_k with x_hat = x - eps * sign(-grad_x log S_yhat(x; T)).

    The input is nudged to raise the temperature-scaled confidence of the predicted class, which
    raises in-distribution scores more than out-of-distribution ones. Works on images (uint8, the
    model's own input form), so it holds the model: ``Odin(model)``. ``epsilon`` is refined only by
    :meth:`tune_epsilon` on validation data the caller supplies.

    Parameters
    ----------
    model : nn.Module
    temperature : float
        T (paper: 1000).
    epsilon : float
        Step size on the [0, 1] pixel scale (paper's default 0.0014).
    """

    name = "odin"
    input = "images"
    _constraints = {
        "temperature": (lambda v: v > 0, "a number > 0"),
        "epsilon": (lambda v: v >= 0, "a number >= 0"),
        "batch_size": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    }

    def __init__(
        self,
        model: nn.Module | None = None,
        temperature: float = 1000.0,
        epsilon: float = 0.0014,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.temperature = temperature
        self.epsilon = epsilon
        self.batch_size = batch_size

    def fit(self, images, labels=None) -> Odin:
        """Nothing to learn; records the image shape so that scoring other shapes fails clearly."""
        self._check_params()
        if self.model is None:
            raise AUError("Odin needs the model: Odin(model)")
        images = check_images(images, "Odin")
        self.n_features_in_ = tuple(images.shape[1:])
        return self

    def _scores(self, images: np.ndarray, epsilon: float) -> np.ndarray:
        t = float(self.temperature)
        out = []
        with eval_mode(self.model) as model:
            for x in batches(images, self.batch_size):

                def loss(inp: torch.Tensor) -> torch.Tensor:
                    logits = model(inp) / t
                    return F.cross_entropy(logits, logits.argmax(dim=1), reduction="none")

                x_hat = sign_step(x, loss, epsilon)
                with torch.no_grad():
                    out.append(F.softmax(model(x_hat).double() / t, dim=1).max(dim=1).values.numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def score(self, images) -> np.ndarray:
        self._check_fitted()
        images = check_images(images, "Odin", self.n_features_in_)
        return self._scores(images, float(self.epsilon))

    def tune(self, val_in, val_out=None) -> None:
        """Tune epsilon (:meth:`tune_epsilon`) when OOD validation images are given; else keep the paper's."""
        if val_out is not None:
            self.tune_epsilon(val_in, val_out)

    def tune_epsilon(self, val_in, val_out, epsilons=EPSILON_GRID) -> dict[float, float]:
        """Set ``epsilon`` to the grid value with the lowest FPR at 95% TPR on (``val_in``, ``val_out``).

        The paper's criterion. Both sets are the caller's validation data, never the test sets.
        Returns FPR at 95% TPR for every epsilon tried.
        """
        from au.ood.metrics import fpr_at_tpr

        self._check_fitted()
        val_in = check_images(val_in, "Odin", self.n_features_in_)
        val_out = check_images(val_out, "Odin", self.n_features_in_)
        results = {}
        for eps in epsilons:
            results[float(eps)] = fpr_at_tpr(self._scores(val_in, eps), self._scores(val_out, eps))
        self.epsilon = min(results, key=lambda e: (results[e], e))
        self.tuning_ = results
        return results
