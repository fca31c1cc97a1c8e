"""Training (``au train``): deterministic, resumable, for any ``nn.Module`` on any :class:`~au.data.ImageDataset`.

>>> from au.train import TrainConfig, train_run, load_run
>>> result = train_run(model, train, test, TrainConfig(keep=0.1, seed=0), "runs/x")
>>> run = load_run("runs/x")   # rebuilds the model and checks the weights' SHA-256

Modules: ``config`` (TrainConfig), ``loop`` (the seeded training loop), ``checkpoint`` (mid-training
state), ``evaluation``, ``rundir`` (run directories, read and written), ``train_job`` (the job).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["TrainConfig"],
        "evaluation": ["Evaluation", "evaluate", "metrics_from_logits", "predict_logits"],
        "loop": ["FitResult", "fit"],
        "rundir": ["Run", "load_run", "read_manifest"],
        "train_job": ["RunResult", "train_run"],
    },
)
