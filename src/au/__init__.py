"""AU, "Search for Gold": how a convolutional network's training data relates to its accuracy.

The package follows the pipeline, one sub-package per stage, each named after its command where
it has one; a command's job is the module ``<stage>/<command>_job.py``::

    au.data         datasets as uint8 image arrays, loaded offline from a spec string; au export:
                    any dataset as a Parquet table of encoded images
    au.models       named-layer CNNs, their layers' shapes, safetensors weights
    au.train        au train: deterministic, resumable training into a run directory (--confident
                    trains beside a GAN, through au.generate)
    au.ablation     au ablate: one model per (training fraction, trial), the trials table
    au.curves       au curve: PAC and power-law learning curves fitted to a sweep
    au.activations  au record: layer activations streamed to Parquet, and read back
    au.ood          OOD metrics (AUROC, FPR at 95% TPR, ...)
    au.detectors    the coverage scores: one contract, one file per detector, a registry
    au.spaces       feature spaces beside the network's (pixels, HOG, keypoint words): au score --space
    au.score        au score: every detector fitted and evaluated against OOD sets
    au.guarantees   the pure mathematics of certified coverage (bounds, SGR, LTT, splits, calibration)
    au.gold         au gold: the certified leaderboard, coverage along an ablation sweep
    au.explain      au explain (attributions, unit projections, the low-density backtrace) and
                    au perturb (activations perturbed, propagated, scored)
    au.generate     the confident classifier and its GAN, au boundary (its samples judged), au decode
                    (activations decoded back to images, inversion by optimisation)
    au.engines      engines beside the local process: au.engines.spark runs record, score and ablate
                    on Apache Spark
    au.report       the self-contained HTML report and its plots
    au.demo         au demo: every stage in order, one report

Beside them: ``au.jobs``, the one protocol by which every command owns its output directory;
``au.tables``, Parquet tables with declared schemas; ``au.cli``, the ``au`` command.
"""

from au.errors import AUError

__version__ = "0.1.0"

__all__ = ["AUError", "__version__"]
