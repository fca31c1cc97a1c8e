"""Looking inside (``au explain``, ``au perturb``): attributions, unit projections, the low-density backtrace,
and perturbed activations. Every attribution runs through captum.

>>> from au.explain import ExplainConfig, attribute, explain_inputs
>>> maps = attribute(model, images, targets, ["saliency", "gradcam"])   # {method: (N, C, H, W)}
>>> explain_inputs(model, test, "explain/", ExplainConfig(select="wrong", limit=8))
>>> explain_units(model, "acts/test", "units/", UnitsConfig(units=("fc1:3",)))
>>> perturb_run(model, train, test, "perturb/", PerturbConfig(layer="fc1"))

Modules: ``config`` (the settings), ``methods`` (the six methods via captum), ``relus`` (which
ReLUs captum can see), ``select`` (which inputs), ``density`` (features and the parzen_lsh
density), ``units`` (unit projection), ``backtrace`` (the low-density backtrace), ``perturb``
(perturbation hooks), ``schema`` (the tables), ``plots``, and the jobs ``explain_job`` and ``perturb_job``.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": [
            "METHODS",
            "BacktraceConfig",
            "ExplainConfig",
            "PerturbConfig",
            "Unit",
            "UnitsConfig",
            "parse_unit",
        ],
        "methods": ["attribute", "METHOD_TABLE"],
        "relus": ["functional_relus"],
        "units": ["top_rows", "top_units"],
        "explain_job": ["explain_backtrace", "explain_inputs", "explain_units"],
        "perturb_job": ["perturb_run"],
    },
)
