"""The full Mahalanobis method: several layers, input pre-processing, a logistic-regression combiner
(Lee et al. 2018, arXiv 1807.03888)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.nn import functional as F

from au.activations.hooks import capture, resolve_layers
from au.detectors.base import Detector
from au.detectors.images import batches, check_images, sign_step
from au.detectors.mahalanobis import Mahalanobis
from au.errors import AUError
from au.models.layers import eval_mode, weighted_layers

EPSILON_GRID = (0.0, 0.0005, 0.001, 0.0014, 0.002, 0.005, 0.01)


class MahalanobisEnsemble(Detector):
    """Per-layer Mahalanobis scores after input pre-processing, combined by logistic regression.

    For each layer l (features average-pooled over space), class means and a tied covariance are
    fitted on the training images. At scoring time each layer gets its own pre-processed input
    ``x_l = x - eps * sign(grad_x min_c d_l(x, c))`` - a step that brings the input closer to its
    nearest class mean at that layer - and contributes ``M_l(x_l) = -min_c d_l(x_l, c)``. A
    logistic regression fitted on validation data weighs the layers (:meth:`fit_combiner`): the
    in-distribution validation images against either OOD validation images the caller supplies or,
    as the paper allows, FGSM-perturbed copies of the in-distribution ones. ``epsilon`` is chosen on
    the same validation data. ``score`` is the combiner's decision function (higher = more
    in-distribution).

    Parameters
    ----------
    model : nn.Module
    layers : tuple of str or None
        Layers whose features are used; ``None`` (default) takes every layer with weights before
        ``logits`` (for mnist-cnn: conv1, conv2, fc1).
    adversarial_epsilon : float
        FGSM step for the synthetic negatives when no OOD validation data is given.
    """

    name = "mahalanobis_ensemble"
    input = "images"
    _constraints = {
        "adversarial_epsilon": (lambda v: v > 0, "a number > 0"),
        "batch_size": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    }

    def __init__(
        self,
        model: nn.Module | None = None,
        layers: tuple[str, ...] | None = None,
        epsilons: tuple[float, ...] = EPSILON_GRID,
        adversarial_epsilon: float = 0.05,
        batch_size: int = 128,
    ) -> None:
        self.model = model
        self.layers = layers
        self.epsilons = epsilons
        self.adversarial_epsilon = adversarial_epsilon
        self.batch_size = batch_size

    # ------------------------------------------------------------------ fitting

    def _features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = {name: [] for name in self.layers_}
        with (
            eval_mode(self.model) as model,
            capture(model, list(self.layers_), "avg") as feats,
            torch.no_grad(),
        ):
            for x in batches(images, self.batch_size):
                model(x)
                for name in self.layers_:
                    out[name].append(feats[name].double().numpy())
        return {k: np.concatenate(v) for k, v in out.items()}

    def fit(self, images, labels=None) -> MahalanobisEnsemble:
        """Fit one class-conditional Gaussian per layer on the training images and labels."""
        self._check_params()
        if self.model is None:
            raise AUError("MahalanobisEnsemble needs the model: MahalanobisEnsemble(model)")
        images = check_images(images, "MahalanobisEnsemble")
        labels = self._check_labels(labels, len(images))
        self.layers_ = tuple(resolve_layers(self.model, list(self.layers or weighted_layers(self.model))))
        feats = self._features(images)
        self.gaussians_ = {name: Mahalanobis().fit(feats[name], labels) for name in self.layers_}
        self.n_features_in_ = tuple(images.shape[1:])
        return self

    def _layer_scores(self, images: np.ndarray, epsilon: float) -> np.ndarray:
        """M_l(x_l) for every layer: shape (n, L)."""
        torch_params = {
            name: (torch.from_numpy(g.means_), torch.from_numpy(g.precision_))
            for name, g in self.gaussians_.items()
        }
        scores = []
        with eval_mode(self.model) as model:
            for x in batches(images, self.batch_size):
                columns = []
                for name in self.layers_:
                    means, precision = torch_params[name]

                    def nearest(
                        inp: torch.Tensor, name=name, means=means, precision=precision
                    ) -> torch.Tensor:
                        with capture(model, [name], "avg", detach=False) as feats:
                            model(inp)
                        return _min_distance(feats[name].double(), means, precision)

                    x_l = sign_step(x, nearest, epsilon)
                    with torch.no_grad():
                        columns.append(-nearest(x_l).numpy())
                scores.append(np.stack(columns, axis=1))
        return np.concatenate(scores)

    def _adversarial(self, images: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """FGSM copies of ``images``: one signed step up the classifier's loss, clipped to [0, 255]."""
        out = []
        with eval_mode(self.model) as model:
            for i, x in enumerate(batches(images, self.batch_size)):
                with torch.no_grad():
                    target = model(x).argmax(dim=1)
                if labels is not None:
                    target = torch.from_numpy(labels[i * self.batch_size : i * self.batch_size + len(x)])
                x_adv = sign_step(
                    x,
                    lambda inp, t=target: -F.cross_entropy(model(inp), t, reduction="none"),
                    self.adversarial_epsilon,
                )
                out.append((x_adv.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
        return np.concatenate(out)

    def tune(self, val_in, val_out=None) -> None:
        """Fit the combiner (:meth:`fit_combiner`) on the validation images."""
        self.fit_combiner(val_in, val_out)

    def fit_combiner(self, val_in, val_out=None, val_labels=None) -> dict[float, float]:
        """Choose epsilon and fit the layer weights on validation data; returns validation AUROC per epsilon.

        Parameters
        ----------
        val_in : uint8 images (N, H, W, C)
            In-distribution validation images (not the test split).
        val_out : uint8 images, optional
            OOD validation images; when omitted, FGSM-perturbed ``val_in`` are the negatives.
        val_labels : (N,) ints, optional
            Labels of ``val_in`` for FGSM (default: the model's predictions).
        """
        from au.ood.metrics import auroc

        self._check_fitted()
        val_in = check_images(val_in, "MahalanobisEnsemble", self.n_features_in_)
        negatives = "supplied OOD images"
        if val_out is None:
            val_out = self._adversarial(val_in, None if val_labels is None else np.asarray(val_labels))
            negatives = f"FGSM (epsilon {self.adversarial_epsilon}) of the in-distribution validation images"
        val_out = check_images(val_out, "MahalanobisEnsemble", self.n_features_in_)
        y = np.concatenate([np.ones(len(val_in)), np.zeros(len(val_out))])
        results, fitted = {}, {}
        for eps in self.epsilons:
            x = np.concatenate([self._layer_scores(val_in, eps), self._layer_scores(val_out, eps)])
            combiner = LogisticRegression(max_iter=1000).fit(x, y)
            results[float(eps)] = auroc(
                combiner.decision_function(x[y == 1]), combiner.decision_function(x[y == 0])
            )
            fitted[float(eps)] = combiner
        self.epsilon_ = max(results, key=lambda e: (results[e], -e))
        self.combiner_ = fitted[self.epsilon_]
        self.combiner_negatives_ = negatives
        self.tuning_ = results
        return results

    def score(self, images) -> np.ndarray:
        self._check_fitted()
        if not hasattr(self, "combiner_"):
            raise AUError(
                "MahalanobisEnsemble: call fit_combiner(val_in, val_out) on validation data before score"
            )
        images = check_images(images, "MahalanobisEnsemble", self.n_features_in_)
        return self.combiner_.decision_function(self._layer_scores(images, self.epsilon_)).astype(np.float64)


def _min_distance(z: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """min over classes of (z - mu_c)^T P (z - mu_c), shape (n,); differentiable in z."""
    d = z[:, None, :] - means[None, :, :]  # (n, C, d)
    return torch.einsum("ncd,de,nce->nc", d, precision, d).min(dim=1).values
