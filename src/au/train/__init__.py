"""Training: deterministic, resumable, for any ``nn.Module`` on any :class:`~au.data.ImageDataset`.

>>> from au.train import TrainConfig, train_run
>>> result = train_run(model, train, test, TrainConfig(keep=0.1, seed=0), "runs/x")
"""

from au.train.config import TrainConfig
from au.train.evaluate import Evaluation, evaluate, metrics_from_logits, predict_logits
from au.train.loop import FitResult, fit
from au.train.run import RunResult, train_run

__all__ = [
    "Evaluation",
    "FitResult",
    "RunResult",
    "TrainConfig",
    "evaluate",
    "fit",
    "metrics_from_logits",
    "predict_logits",
    "train_run",
]
