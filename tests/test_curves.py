"""Learning-curve fits recover known parameters from noisy synthetic curves; inverses and intervals behave."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from au import AUError
from au.ablation.table import TRIALS_SCHEMA
from au.curves import (
    CurveOptions,
    PACFit,
    PowerLawFit,
    analyse_class_sweep,
    analyse_fraction_sweep,
    fit_pac,
    fit_power_law,
)

SIZES = np.array([60, 120, 300, 600, 1200, 3000, 6000, 12000, 30000, 60000], dtype=float)


def _noisy(err: np.ndarray, trials: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = np.repeat(SIZES, trials)
    return m, np.repeat(err, trials) * np.exp(rng.normal(0, noise, size=len(m)))


def test_power_law_recovers_known_parameters():
    truth = PowerLawFit(a=4.0, b=0.55, e_inf=0.006)
    m, err = _noisy(truth.error(SIZES), trials=3, noise=0.03)
    fit = fit_power_law(m, err)
    assert fit.b == pytest.approx(truth.b, rel=0.1)
    assert fit.a == pytest.approx(truth.a, rel=0.35)
    assert fit.e_inf == pytest.approx(truth.e_inf, abs=0.0015)


def test_power_law_without_asymptote():
    truth = PowerLawFit(a=2.0, b=0.8, e_inf=0.0)
    fit = fit_power_law(SIZES, truth.error(SIZES))  # exact points
    assert fit.b == pytest.approx(0.8, abs=1e-3) and fit.e_inf < 1e-5


def test_pac_recovers_c_and_ln_h():
    truth = PACFit(c=7.5)
    m, err = _noisy(truth.error(SIZES), trials=3, noise=0.05)
    fit = fit_pac(m, err)
    assert fit.c == pytest.approx(7.5, rel=0.05)
    assert fit.ln_h(0.05) == pytest.approx(2 * fit.c - math.log(20))


def test_needed_inverts_the_curve():
    fit = PowerLawFit(a=4.0, b=0.5, e_inf=0.005)
    n = fit.needed(0.99)
    assert float(fit.accuracy(n)) == pytest.approx(0.99)
    assert math.isinf(fit.needed(0.996))  # beyond 1 - e_inf
    pac = PACFit(c=3.0)
    assert float(pac.accuracy(pac.needed(0.99))) == pytest.approx(0.99)


def _table(m: np.ndarray, err: np.ndarray, fractions: np.ndarray, trials: np.ndarray) -> pa.Table:
    rows = []
    for mi, ei, f, t in zip(m, err, fractions, trials, strict=True):
        rows.append(
            {
                "kind": "fraction",
                "fraction": float(f),
                "ablated_class": -1,
                "class_fraction": None,
                "n_train": int(mi),
                "n_val": 0,
                "n_test": 10000,
                "n_train_ablated_class": None,
                "trial": int(t),
                "seed": int(t),
                "test_accuracy": float(1 - ei),
                "test_loss": 0.1,
                "train_accuracy": 1.0,
                "train_loss": 0.0,
                "val_accuracy": None,
                "val_loss": None,
                "per_class_precision": [1.0, 1.0],
                "per_class_recall": [1.0, 1.0],
                "per_class_n_train": [int(mi) // 2, int(mi) // 2],
                "steps": 1,
                "best_step": 1,
                "epochs": 1.0,
                "stopped": "epochs",
                "max_steps": None,
                "patience": None,
                "eval_every": None,
                "threads": 1,
                "wall_seconds": 0.0,
                "run_dir": "x",
            }
        )
    return pa.Table.from_pylist(rows, schema=TRIALS_SCHEMA)


def test_fraction_sweep_analysis_holdout_and_needed():
    truth = PowerLawFit(a=4.0, b=0.55, e_inf=0.006)
    m, err = _noisy(truth.error(SIZES), trials=3, noise=0.03, seed=1)
    fractions = m / 60000
    table = _table(m, err, fractions, np.tile(np.arange(3), len(SIZES)))
    fits, _ = analyse_fraction_sweep(
        table, CurveOptions(bootstrap=200, targets=(0.98, 0.999)), n_parameters=1000
    )
    pl = fits["power_law"]
    assert pl["b_interval"][0] <= truth.b <= pl["b_interval"][1]
    assert fits["pac"]["ln_H_parameter_bound"] == pytest.approx(1000 * 32 * math.log(2))
    # held out: fractions 0.5 and 1.0, predicted from <= 0.2 within half a percentage point
    held = {p["fraction"]: p for p in fits["holdout"]["points"]}
    assert set(held) == {0.5, 1.0}
    assert abs(held[1.0]["power_law"]["miss_pp"]) < 0.5
    need = {n["target_accuracy"]: n for n in fits["needed"]}
    expected = truth.needed(0.98)
    lo, hi = need[0.98]["power_law"]["interval"]
    assert lo <= expected <= hi
    assert not need[0.999]["power_law"]["reachable"]
    assert fits["bootstrap"]["method"].startswith("trials resampled")


def test_single_trial_uses_the_pairs_bootstrap():
    truth = PowerLawFit(a=4.0, b=0.55, e_inf=0.006)
    table = _table(SIZES, truth.error(SIZES), SIZES / 60000, np.zeros(len(SIZES)))
    fits, _ = analyse_fraction_sweep(table, CurveOptions(bootstrap=50))
    assert fits["bootstrap"]["method"].startswith("points resampled")


def test_too_few_sizes_is_a_clear_error():
    table = _table(np.array([100.0, 100.0]), np.array([0.1, 0.12]), np.array([0.1, 0.1]), np.array([0, 1]))
    with pytest.raises(AUError, match="2 or more training-set sizes"):
        analyse_fraction_sweep(table, CurveOptions(bootstrap=20))


@pytest.mark.parametrize("kwargs", [{"delta": 0.0}, {"delta": 1.0}, {"targets": (1.0,)}, {"bootstrap": 3}])
def test_curve_options_validation(kwargs):
    with pytest.raises(AUError):
        CurveOptions(**kwargs)


def test_class_sweep_analysis():
    rows = []
    for f, n_k, rec_k in ((0.01, 60, 0.6), (0.1, 600, 0.9), (0.5, 3000, 0.97), (1.0, 6000, 0.98)):
        rows.append(
            _table(np.array([54000.0]), np.array([0.02]), np.array([1.0]), np.array([0])).to_pylist()[0]
            | {
                "kind": "class",
                "ablated_class": 1,
                "class_fraction": f,
                "n_train_ablated_class": n_k,
                "per_class_recall": [0.99, rec_k, 0.99],
                "per_class_precision": [0.95 + f / 25, 0.99, 0.97],
            }
        )
    fits = analyse_class_sweep(
        pa.Table.from_pylist(rows, schema=TRIALS_SCHEMA), ("a", "b", "c"), CurveOptions()
    )
    assert fits["class_name"] == "b" and [p["class_recall_mean"] for p in fits["points"]] == [
        0.6,
        0.9,
        0.97,
        0.98,
    ]
    assert fits["points"][0]["others_recall_mean"] == pytest.approx(0.99)
    assert fits["class_error_power_law"]["b"] > 0


def test_needed_beyond_what_a_float_holds_is_unreachable_not_an_error():
    from au.curves.power_law import PowerLawFit

    flat = PowerLawFit(a=0.5, b=0.01, e_inf=0.0)  # m = (0.5 / 0.05)^100 = 1e100: still a float
    assert flat.needed(0.95) == pytest.approx(1e100, rel=1e-6)
    flatter = PowerLawFit(a=0.5, b=0.001, e_inf=0.0)  # 1e1000 overflows a float
    assert flatter.needed(0.95) == float("inf")
    assert PowerLawFit(a=0.5, b=0.5, e_inf=0.0).needed(0.95) == pytest.approx(100.0)
