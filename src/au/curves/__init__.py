"""Learning curves (``au curve``): PAC and power-law fits of accuracy against training-set size, with bootstrap bands.

>>> from au.curves import CurveOptions, analyse_sweep
>>> result = analyse_sweep("runs/ablate", CurveOptions(targets=(0.99,)))   # writes runs/ablate/curve/

Pure fits (``pac``, ``power_law``, ``bootstrap``, ``learning_curve``) take arrays and return
arrays; ``curve_job`` is the job, ``plots`` its figures, ``findings`` its sentences.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["CurveOptions"],
        "curve_job": ["FITS_FILE", "CurveResult", "analyse_sweep"],
        "findings": ["sentences"],
        "learning_curve": ["analyse_class_sweep", "analyse_fraction_sweep"],
        "pac": ["PACFit", "fit_pac"],
        "power_law": ["PowerLawFit", "fit_power_law"],
    },
)
