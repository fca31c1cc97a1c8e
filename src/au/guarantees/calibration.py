"""Calibration of the softmax: reliability diagrams, expected calibration error, temperature scaling.

Temperature scaling (Guo et al. 2017, arXiv 1706.04599) divides the logits by one scalar ``T``
fitted to minimise the negative log-likelihood on held-out (calibration) data; it leaves every
prediction unchanged and only rescales confidence. ECE is the same paper's equal-width binned
``sum_b |B_b|/n * |accuracy(B_b) - confidence(B_b)|``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from au.errors import AUError


def _check_logits(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != (len(z),):
        raise AUError(f"logits must be (n, classes) and labels (n,), got {z.shape} and {y.shape}")
    if len(z) == 0:
        raise AUError("calibration needs at least one input with a label")
    if not np.isfinite(z).all():
        raise AUError("logits hold NaN or infinite values; calibration needs finite logits")
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any() or (y >= z.shape[1]).any():
        raise AUError(f"labels must be class indices in 0..{z.shape[1] - 1}")
    return z, y.astype(np.int64)


def nll(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    return _nll(*_check_logits(logits, labels), temperature)


def _nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    return float(-log_softmax(z / temperature, axis=1)[np.arange(len(y)), y].mean())


def fit_temperature(logits, labels, bounds: tuple[float, float] = (0.01, 100.0)) -> float:
    """The temperature minimising the NLL of ``labels`` (Guo et al. 2017, arXiv 1706.04599).

    Searched on log T within ``bounds`` (bounded Brent); the NLL is convex in 1/T, so the minimum is
    unique. A result at a bound means the optimum lies beyond it (e.g. a model no better than chance
    wants T -> infinity); :func:`calibration_summary` flags it.
    """
    z, y = _check_logits(logits, labels)
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    result = minimize_scalar(
        lambda log_t: _nll(z, y, float(np.exp(log_t))),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(result.x))


def confidences(logits, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(max softmax probability, predicted class), each (n,), of ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(log_softmax(z, axis=1))
    return p.max(axis=1), p.argmax(axis=1)


def reliability(confidence, correct, bins: int = 15) -> dict[str, np.ndarray]:
    """Equal-width bins over [0, 1]: per bin its ``count``, mean ``confidence`` and ``accuracy`` (NaN if empty).

    The data of a reliability diagram (Guo et al. 2017, arXiv 1706.04599); bins are (lo, hi], 0 in the first.
    """
    c = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if c.shape != ok.shape or c.ndim != 1:
        raise AUError("confidence and correct must be 1-D of equal length")
    if bins < 1:
        raise AUError(f"bins must be at least 1, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, c, side="left") - 1, 0, bins - 1)  # (lo, hi] bins, 0 in the first
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(index, weights=c, minlength=bins) / count
        acc = np.bincount(index, weights=ok.astype(np.float64), minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": conf, "accuracy": acc}


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    """ECE: the count-weighted mean gap between accuracy and confidence over equal-width bins.

    As defined by Guo et al. 2017 (arXiv 1706.04599, eq. 3) after Naeini et al. 2015.
    """
    r = reliability(confidence, correct, bins)
    used = r["count"] > 0
    return float(
        np.sum(r["count"][used] * np.abs(r["accuracy"][used] - r["confidence"][used])) / r["count"].sum()
    )


def calibration_summary(logits, labels, cal_mask, bins: int = 15) -> dict:
    """Temperature fitted on the calibration part; ECE and NLL on the test part before and after.

    Returns a JSON-ready dict with ``temperature``, ``ece_before``/``ece_after``,
    ``nll_before``/``nll_after``, the counts, and the reliability bins of the test part.
    """
    z, y = _check_logits(logits, labels)
    cal = np.asarray(cal_mask, dtype=bool)
    if cal.shape != y.shape or cal.all() or not cal.any():
        raise AUError("the calibration mask must select some but not all inputs")
    bounds = (0.01, 100.0)
    t = fit_temperature(z[cal], y[cal], bounds)
    at_bound = bool(min(abs(np.log(t / b)) for b in bounds) < 1e-3)
    out: dict = {
        "temperature": t,
        "temperature_at_bound": at_bound,
        "n_cal": int(cal.sum()),
        "n_test": int((~cal).sum()),
        "bins": bins,
    }
    for tag, temp in (("before", 1.0), ("after", t)):
        conf, pred = confidences(z[~cal], temp)
        correct = pred == y[~cal]
        out[f"ece_{tag}"] = expected_calibration_error(conf, correct, bins)
        out[f"nll_{tag}"] = _nll(z[~cal], y[~cal], temp)
        r = reliability(conf, correct, bins)
        out[f"reliability_{tag}"] = {k: v.tolist() for k, v in r.items()}
    return out
