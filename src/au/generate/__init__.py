"""Inputs at the edge of the training data (``au train --confident``, ``au boundary``, ``au decode``).

>>> from au.generate import ConfidentConfig, ConfidentTrainer, boundary_run
>>> trainer = ConfidentTrainer(model, config, ConfidentConfig(beta=0.1), train.class_names)
>>> train_run(model, train, test, config, "runs/conf", trainer=trainer)   # a run with a generator
>>> data.load("generated:runs/conf", "all")                              # its samples, an OOD set
>>> boundary_run("scores/conf", "boundary/", gold="gold/conf", baseline="scores/std")
>>> decode_run(model, "acts/train", "acts/test", "decode/", DecodeConfig(layers=("fc1",)))

Modules: ``gan`` (the DCGAN pair), ``confident_config`` and ``confident`` (the confident classifier's
training step, Lee et al. 2018); ``boundary_config``, ``boundary_tables``, ``boundary_report`` and the
job ``boundary_job``; ``decode_config``, ``decoder`` (decoders from a layer back to the image),
``invert`` (inversion by optimisation, Mahendran & Vedaldi 2015), ``density_draws``, ``decode_tables``,
``decode_plots`` and the job ``decode_job``.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "gan": ["Discriminator", "Generator"],
        "confident_config": ["ConfidentConfig"],
        "confident": ["ConfidentTrainer", "generate", "kl_from_uniform"],
        "boundary_config": ["BoundaryConfig"],
        "boundary_job": ["boundary_run"],
        "decode_config": ["DecodeConfig"],
        "decode_job": ["decode_run"],
        "decode_tables": ["DECODED", "decoded_schema"],
        "density_draws": ["kernel_draws"],
        "decoder": ["build_decoder", "train_decoder", "decode"],
        "invert": ["invert", "total_variation"],
    },
)
