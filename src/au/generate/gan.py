"""The DCGAN pair of the confident classifier: a generator from noise to images and a discriminator.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional GANs"
(arXiv 1511.06434): transposed convolutions with batch norm and ReLU up, strided convolutions with
leaky ReLU down, weights drawn from N(0, 0.02). Lee et al.'s confident classifier (arXiv 1711.09325)
uses this pair with ``nz = 100`` and ``ngf = ndf = 64``; here it has two stride-2 stages instead of
four, so that one network shape serves 28x28 and 32x32 images (any H, W divisible by 4) and trains
on a CPU. Shapes for a 28x28x1 image, ``width = 64``::

    generator      z (N, nz, 1, 1) -> (N, 128, 7, 7) -> (N, 64, 14, 14) -> (N, 1, 28, 28) in [0, 1]
    discriminator  x (N, 1, 28, 28) -> (N, 64, 14, 14) -> (N, 128, 7, 7) -> (N,) logits (real > 0)
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from au.errors import AUError


def check_shape(input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """The (H/4, W/4) the networks start and end at; one line when H or W is not divisible by 4."""
    c, h, w = input_shape
    if h % 4 or w % 4 or h < 8 or w < 8:
        raise AUError(
            f"the confident classifier's GAN needs images whose height and width are multiples of 4 (at least 8); "
            f"these are {h}x{w}x{c}"
        )
    return h // 4, w // 4


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: convolutions N(0, 0.02), batch-norm scales N(1, 0.02) and shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Sequential):
    """Noise (N, nz, 1, 1) -> images (N, C, H, W) in [0, 1] (a sigmoid, the range AU's models take)."""

    def __init__(self, input_shape: tuple[int, int, int], nz: int = 100, width: int = 64) -> None:
        c = input_shape[0]
        start = check_shape(input_shape)
        super().__init__(
            OrderedDict(
                project=nn.ConvTranspose2d(nz, width * 2, start, bias=False),
                project_bn=nn.BatchNorm2d(width * 2),
                project_relu=nn.ReLU(),
                up1=nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False),
                up1_bn=nn.BatchNorm2d(width),
                up1_relu=nn.ReLU(),
                up2=nn.ConvTranspose2d(width, c, 4, 2, 1, bias=False),
                image=nn.Sigmoid(),
            )
        )
        self.input_shape, self.nz = tuple(input_shape), nz
        dcgan_init(self)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) from standard normal noise drawn with ``generator``."""
        return self(torch.randn(n, self.nz, 1, 1, generator=generator))


class Discriminator(nn.Sequential):
    """Images (N, C, H, W) in [0, 1] -> one logit per image (N,): positive means "real"."""

    def __init__(self, input_shape: tuple[int, int, int], width: int = 64) -> None:
        c = input_shape[0]
        end = check_shape(input_shape)
        super().__init__(
            OrderedDict(
                down1=nn.Conv2d(c, width, 4, 2, 1, bias=False),
                down1_relu=nn.LeakyReLU(0.2),
                down2=nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                down2_bn=nn.BatchNorm2d(width * 2),
                down2_relu=nn.LeakyReLU(0.2),
                judge=nn.Conv2d(width * 2, 1, end, bias=False),
                flatten=nn.Flatten(0),
            )
        )
        self.input_shape = tuple(input_shape)
        dcgan_init(self)
