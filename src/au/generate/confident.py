"""The confidence-calibrated classifier: a classifier trained jointly with a GAN whose samples it must find
uninformative (``au train --confident``).

Lee, Lee, Lee & Shin, "Training Confidence-calibrated Classifiers for Detecting Out-of-Distribution
Samples" (ICLR 2018, arXiv 1711.09325), as its released code trains it. Each step, on a batch
``(x, y)`` and noise ``z``, with ``KL(U || p(y|.))`` the divergence of the uniform distribution from
the classifier's softmax::

    discriminator  BCE(D(x), 1) + BCE(D(G(z)), 0)
    generator      BCE(D(G(z)), 1) + beta * KL(U || p(y | G(z)))      (fool D; be uninformative to C)
    classifier     NLL(C(x), y)    + beta * KL(U || p(y | G(z)))      (learn; be uniform off the data)

so the generator is pulled to the edge of the training data - realistic enough to fool the
discriminator, yet where the classifier is unsure - and the classifier learns low confidence
there. The paper's pull-away term (its Eq. 4) is absent from the released code, and from here.
The discriminator and generator use Adam at 2e-4 with betas (0.5, 0.999), as in that code; the
classifier keeps its own optimiser and schedule (:class:`au.train.TrainConfig`).

The trainer plugs into AU's training loop (:class:`au.train.loop.Trainer`): the run is an ordinary
``au train`` run - seeded, checkpointed with all three networks, resumable after a kill - whose
directory also holds the generator, the discriminator and a set of generated samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from au.data.dataset import NO_LABEL, ImageDataset
from au.data.images_table import write_images_table
from au.errors import AUError
from au.files import sha256_file
from au.generate.confident_config import ConfidentConfig
from au.generate.gan import Discriminator, Generator, check_shape
from au.models.layers import eval_mode
from au.models.weights import save_weights, state_sha256
from au.report.plots import save as save_figure
from au.train.config import TrainConfig
from au.train.loop import Trainer

GENERATOR = "generator.safetensors"
DISCRIMINATOR = "discriminator.safetensors"
GENERATED = "generated.parquet"
GENERATED_GRID = "generated.png"
LOSSES = ("nll", "kl_fake", "d_loss", "g_loss", "g_kl", "d_real", "d_fake")
"""The running losses a confident run's history adds, one value per epoch (averaged over its examples):
the classifier's NLL and KL term, the discriminator's loss, the generator's BCE and KL terms, and the
discriminator's mean probability of "real" on the data and on generated samples."""


def kl_from_uniform(logits: torch.Tensor) -> torch.Tensor:
    """``KL(U || softmax(logits))`` averaged over the batch: ``-log K - mean_k log p_k`` per row. (N, K) -> ()."""
    log_p = F.log_softmax(logits, dim=1)
    return -math.log(logits.shape[1]) - log_p.mean(dim=1).mean()


class ConfidentTrainer(Trainer):
    """One step of the confident classifier: the discriminator, the generator, then the classifier.

    Parameters
    ----------
    model : nn.Module
        The classifier (any AU model): float32 (N, C, H, W) in [0, 1] -> logits (N, K).
    config : TrainConfig
        The classifier's training; its seed also seeds the GAN's initial weights.
    confident : ConfidentConfig
    class_names : tuple of str
        The classifier's classes (recorded with the generated samples).
    """

    losses = LOSSES

    def __init__(
        self, model: nn.Module, config: TrainConfig, confident: ConfidentConfig, class_names: tuple[str, ...]
    ) -> None:
        super().__init__(model, config)
        shape = tuple(getattr(model, "input_shape", ()))
        if len(shape) != 3:
            raise AUError("the confident classifier needs a model with an input_shape attribute (C, H, W)")
        check_shape(shape)
        self.confident, self.seed, self.class_names = confident, config.seed, tuple(class_names)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(
                config.seed + 1
            )  # the GAN's initial weights: seeded apart from the classifier's
            self.generator = Generator(shape, confident.nz, confident.width)
            self.discriminator = Discriminator(shape, confident.width)
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=confident.gan_lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=confident.gan_lr, betas=betas)

    def networks(self):
        return {
            **super().networks(),
            "generator": (self.generator, self.opt_g),
            "discriminator": (self.discriminator, self.opt_d),
        }

    def identity(self) -> dict:
        return {
            "kind": "confident",
            "confident": asdict(self.confident),
            "generator_sha256": state_sha256(self.generator),
            "discriminator_sha256": state_sha256(self.discriminator),
        }

    def _gan_step(self, x: torch.Tensor, run: dict) -> torch.Tensor:
        """One discriminator and one generator update; returns the generated batch (B, C, H, W), detached."""
        b, beta = len(x), self.confident.beta
        fake = self.generator(torch.randn(b, self.confident.nz, 1, 1))
        self.opt_d.zero_grad(set_to_none=True)
        d_real, d_fake = self.discriminator(x), self.discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        d_loss.backward()
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        judged = self.discriminator(fake)
        g_bce = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
        g_kl = kl_from_uniform(self.model(fake))
        (g_bce + beta * g_kl).backward()  # also leaves gradients on the classifier: cleared before its step
        self.opt_g.step()
        for key, value in (
            ("d_loss", d_loss),
            ("g_loss", g_bce),
            ("g_kl", g_kl),
            ("d_real", torch.sigmoid(d_real).mean()),
            ("d_fake", torch.sigmoid(d_fake).mean()),
        ):
            run[key] += value.item() * b / self.confident.gan_steps
        return fake.detach()

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, run: dict) -> tuple[float, torch.Tensor]:
        for _ in range(self.confident.gan_steps):
            fake = self._gan_step(x, run)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        nll = F.cross_entropy(logits, y)
        kl = kl_from_uniform(self.model(fake))
        (nll + self.confident.beta * kl).backward()
        self.optimizer.step()
        run["nll"] += nll.item() * len(y)
        run["kl_fake"] += kl.item() * len(y)
        return nll.item(), logits.detach()  # the history's train_loss stays the NLL, comparable with any run

    def write(self, out: Path, history: dict) -> tuple[tuple[str, ...], dict]:
        """The generator, the discriminator, ``samples`` generated images (a table and a grid) and the
        manifest's record of them with the losses per epoch."""
        out = Path(out)
        files = {"generator": save_weights(self.generator, out / GENERATOR)}
        files["discriminator"] = save_weights(self.discriminator, out / DISCRIMINATOR)
        images = generate(self.generator, self.confident.samples, self.seed)
        data = ImageDataset(
            images=images,
            labels=np.full(len(images), NO_LABEL, dtype=np.int64),
            ids=np.array([f"generated-{i:05d}" for i in range(len(images))]),
            class_names=self.class_names,
            name="generated",
            split="all",
        )
        write_images_table(data, out / GENERATED, show_progress=False)
        save_figure(samples_grid(self.model, images[:64]), out / GENERATED_GRID)
        record = {
            **asdict(self.confident),
            "paper": "arXiv 1711.09325",
            "losses_per_epoch": {k: history[k] for k in ("epoch", "train_loss", *LOSSES, "val_accuracy")},
            "generator": {"file": GENERATOR, "sha256": files["generator"]},
            "discriminator": {"file": DISCRIMINATOR, "sha256": files["discriminator"]},
            "generated": {"file": GENERATED, "rows": len(images), "sha256": sha256_file(out / GENERATED)},
        }
        return (GENERATOR, DISCRIMINATOR, GENERATED, GENERATED_GRID), {"confident": record}


def generate(generator: Generator, n: int, seed: int, batch_size: int = 256) -> np.ndarray:
    """``n`` samples of ``generator`` (in eval mode: batch norm from its running statistics) as uint8
    images (n, H, W, C), from noise drawn with ``seed``."""
    rng = torch.Generator().manual_seed(seed)
    out = []
    with eval_mode(generator), torch.inference_mode():
        for lo in range(0, n, batch_size):
            x = generator.sample(min(batch_size, n - lo), rng)  # (B, C, H, W) in [0, 1]
            out.append((x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy().copy())
    return np.concatenate(out)


def samples_grid(model: nn.Module, images: np.ndarray, columns: int = 8):
    """A figure of generated images, each titled with the classifier's prediction and maximum softmax."""
    import matplotlib.pyplot as plt

    from au.data.dataset import to_tensor

    with eval_mode(model), torch.inference_mode():
        probs = torch.softmax(model(to_tensor(images)), dim=1)
    msp, pred = probs.max(dim=1)
    rows = max(1, math.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.25), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(
                images[i].squeeze(-1) if images.shape[-1] == 1 else images[i], cmap="gray", vmin=0, vmax=255
            )
            ax.set_title(f"{int(pred[i])} ({float(msp[i]):.2f})", fontsize=7)
    fig.suptitle("Generated samples: the classifier's prediction (maximum softmax)", fontsize=9)
    fig.tight_layout()
    return fig
