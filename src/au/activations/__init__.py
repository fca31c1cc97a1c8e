"""Activations (``au record``): record any named layers of any model to Parquet, streaming and resumable.

>>> from au import activations
>>> activations.record(model, data, "acts/mnist-test", activations.RecordConfig(layers=("fc1",)))
>>> fc1 = activations.open("acts/mnist-test").layer("fc1")   # values (rows, 128), ids, labels, pred

Modules: ``config`` (RecordConfig), ``hooks`` (capturing layers in a forward pass), ``schema`` (the
table's columns), ``parts`` (part files), ``record_job`` (the ``au record`` job), ``reader``.
Names are imported on first use, so that ``au --help`` does not wait for torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["RecordConfig"],
        "hooks": ["capture", "pool_output", "resolve_layers"],
        "reader": ["LayerData", "Recording", "open"],
        "record_job": ["record"],
        "schema": ["LayerSpec", "recording_schema"],
    },
)
