"""Learning curves: PAC and power-law fits of accuracy against training-set size, with bootstrap bands.

>>> from au.curves import CurveOptions, analyse_sweep
>>> result = analyse_sweep("runs/ablate", CurveOptions(targets=(0.99,)))   # writes fits.json and PNGs
"""

from au.curves.learning_curve import CurveOptions, analyse_class_sweep, analyse_fraction_sweep
from au.curves.pac import PACFit, fit_pac
from au.curves.power_law import PowerLawFit, fit_power_law
from au.curves.sweep_report import FITS_FILE, analyse_sweep, sentences

__all__ = [
    "FITS_FILE",
    "CurveOptions",
    "PACFit",
    "PowerLawFit",
    "analyse_class_sweep",
    "analyse_fraction_sweep",
    "analyse_sweep",
    "fit_pac",
    "fit_power_law",
    "sentences",
]
