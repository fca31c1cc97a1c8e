"""Decoders: small networks that map one layer's activation back to the input image.

A layer recorded as a vector (F,) - a fully connected layer, or a conv map pooled over space - is
decoded by :class:`VectorDecoder`; a conv map recorded whole (``au record --pool none``), (C', H', W'),
by :class:`MapDecoder`. Both standardise their input with the training activations' statistics (kept
as buffers, so a saved decoder is complete) and return pixel logits; :func:`decode` applies the
sigmoid, so images lie in [0, 1] like AU's model input. This is the "decoder" route of inverting a
representation (Dosovitskiy & Brox 2016, arXiv 1506.02753): one forward pass per image once trained,
against :mod:`au.generate.invert`'s optimisation per image.

Training (:func:`train_decoder`) is seeded and deterministic on CPU for a fixed thread count: the
weights are drawn under ``seed`` without touching torch's global generator, and the mini-batches are
drawn by NumPy's generator of the same seed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from au import progress
from au.data.dataset import to_tensor


class _Standardise(nn.Module):
    """(x - mean) / scale, with mean and scale (shaped like one input, or per channel) kept as buffers."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("scale", torch.ones(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    @torch.no_grad()
    def set_from(self, features: np.ndarray, chunk: int = 1024) -> None:
        """Statistics of ``features`` (n, *shape): over rows, and over space too for a per-channel (C, 1, 1) buffer.

        Summed in float64 ``chunk`` rows at a time, so a recorded map is never copied whole.
        """
        axes = (0,) if self.mean.ndim == 1 else (0, 2, 3)
        total = squares = 0.0
        for lo in range(0, len(features), chunk):
            x = np.asarray(features[lo : lo + chunk], dtype=np.float64)
            total, squares = total + x.sum(axis=axes), squares + (x * x).sum(axis=axes)
        count = len(features) * (int(np.prod(features.shape[2:])) if self.mean.ndim == 3 else 1)
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        self.mean.copy_(torch.from_numpy(mean).reshape(self.mean.shape))
        # a unit that never varies is left as it is
        self.scale.copy_(torch.from_numpy(np.where(std > 1e-6, std, 1.0)).reshape(self.scale.shape))


class VectorDecoder(nn.Module):
    """Activation vector (N, F) -> pixel logits (N, C, H, W).

    Linear to a (width, ceil(H/4), ceil(W/4)) map, two stride-2 transposed convolutions (each doubling
    the size), a 3x3 convolution to C channels, cropped to (H, W).
    """

    def __init__(self, features: int, image_shape: tuple[int, int, int], width: int = 64) -> None:
        super().__init__()
        c, h, w = image_shape
        self.activation_shape = (int(features),)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.seed_shape = (width, math.ceil(h / 4), math.ceil(w / 4))
        self.standardise = _Standardise((features,))
        self.fc = nn.Linear(features, math.prod(self.seed_shape))
        self.up1 = nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(width // 2, width // 4, 4, stride=2, padding=1)
        self.out = nn.Conv2d(width // 4, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(self.standardise(x))).view(len(x), *self.seed_shape)  # (N, width, H/4, W/4)
        h = F.relu(self.up2(F.relu(self.up1(h))))  # (N, width/4, ~H, ~W)
        _, height, width = self.image_shape
        return self.out(h)[:, :, :height, :width]  # (N, C, H, W)


class MapDecoder(nn.Module):
    """Activation map (N, C', H', W') -> pixel logits (N, C, H, W).

    A 3x3 convolution to ``width`` channels, one stride-2 transposed convolution per doubling of H'
    that stays within H (each halving the channels), bilinear resampling to exactly (H, W), and two
    3x3 convolutions down to C channels.
    """

    def __init__(
        self, map_shape: tuple[int, int, int], image_shape: tuple[int, int, int], width: int = 32
    ) -> None:
        super().__init__()
        c_in, h_in, _ = map_shape
        self.activation_shape = tuple(int(s) for s in map_shape)
        self.image_shape = tuple(int(s) for s in image_shape)
        doublings = max(0, int(math.floor(math.log2(max(image_shape[1] / h_in, 1.0)))))
        channels = [max(width >> k, 8) for k in range(doublings + 1)]  # width, width/2, ... (at least 8)
        self.standardise = _Standardise((c_in, 1, 1))
        self.inp = nn.Conv2d(c_in, width, 3, padding=1)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)
            for a, b in zip(channels, channels[1:], strict=False)
        )
        self.mid = nn.Conv2d(channels[-1], channels[-1], 3, padding=1)
        self.out = nn.Conv2d(channels[-1], image_shape[0], 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(self.standardise(x)))  # (N, width, H', W')
        for up in self.ups:
            h = F.relu(up(h))  # twice the size, half the channels
        size = self.image_shape[1:]
        if tuple(h.shape[2:]) != size:
            h = F.interpolate(h, size=size, mode="bilinear", align_corners=False)  # (N, channels, H, W)
        return self.out(F.relu(self.mid(h)))  # (N, C, H, W)


def build_decoder(
    activation_shape: tuple[int, ...], image_shape: tuple[int, int, int], seed: int
) -> VectorDecoder | MapDecoder:
    """A decoder for activations of ``activation_shape`` ((F,) or (C', H', W')), weights drawn under ``seed``.

    torch's global generator is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if len(activation_shape) == 3:
            return MapDecoder(tuple(activation_shape), image_shape)
        return VectorDecoder(math.prod(activation_shape), image_shape)


@dataclass(frozen=True)
class Training:
    """How a decoder's training went: the loss of every step (steps,), and the seconds it took."""

    losses: np.ndarray
    seconds: float


def _batch(decoder, features: np.ndarray, images: np.ndarray, rows: np.ndarray):
    """(activations (B, *activation_shape) float32, images (B, C, H, W) in [0, 1]) of ``rows``."""
    x = torch.from_numpy(np.asarray(features[rows], dtype=np.float32)).view(
        len(rows), *decoder.activation_shape
    )
    return x, to_tensor(images[rows])


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean over pixels of the squared error of sigmoid(logits), or of the binary cross-entropy (``bce``)."""
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(torch.sigmoid(logits), target)


def train_decoder(
    decoder: nn.Module,
    features: np.ndarray,
    images: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    loss: str,
    seed: int,
    desc: str = "decoder",
) -> Training:
    """Fit ``decoder`` to map ``features`` (n, F) to ``images`` uint8 (n, H, W, C) with Adam; left in eval mode.

    The decoder route to inverting a representation (Dosovitskiy & Brox 2016, arXiv 1506.02753): minimise
    the pixel loss ``loss`` (``mse`` or ``bce``) between decoded and true images over the training pairs.

    Mini-batches walk through a fresh permutation of the rows each epoch, drawn with ``seed``.
    """
    decoder.standardise.set_from(np.asarray(features).reshape(len(features), *decoder.activation_shape))
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    losses, order, at = np.zeros(steps), rng.permutation(len(features)), 0
    started = time.perf_counter()
    decoder.train()
    with progress.bar(steps, desc, "step") as bar:
        for step in range(steps):
            if at + batch_size > len(order) and at > 0:
                order, at = rng.permutation(len(features)), 0
            rows = np.sort(order[at : at + batch_size])
            at += batch_size
            x, target = _batch(decoder, features, images, rows)
            value = reconstruction_loss(decoder(x), target, loss)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            losses[step] = value.item()
            bar.update(1)
    decoder.eval()
    return Training(losses=losses, seconds=time.perf_counter() - started)


def decode(decoder: nn.Module, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Images (N, C, H, W) float32 in [0, 1] decoded from ``features`` (N, F), in batches, in eval mode."""
    out = []
    was_training = decoder.training
    decoder.eval()
    try:
        with torch.inference_mode():
            for lo in range(0, len(features), batch_size):
                x = torch.from_numpy(
                    np.array(features[lo : lo + batch_size], dtype=np.float32)
                )  # a copy: may be read-only
                out.append(torch.sigmoid(decoder(x.view(len(x), *decoder.activation_shape))).numpy())
    finally:
        decoder.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, *decoder.image_shape), dtype=np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] -> uint8 (N, H, W, C), rounded: AU's image form, what PNG stores."""
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()
