"""``alexnet-cifar``: an AlexNet-style network sized for 32x32 colour images.

AlexNet's shape (Krizhevsky et al. 2012) - five convolutions with ReLU, three max-pools, three
fully connected layers with dropout - with kernels, strides and widths scaled to 32x32 inputs so
that it trains on two CPU cores. Each convolution is followed by batch normalisation (Ioffe &
Szegedy 2015, arXiv 1502.03167): without it the default budget stopped at 77% test accuracy,
still underfitting (82% train). Normalisation by the CIFAR-10 channel means and deviations is the
first layer, so the model takes float32 images in [0, 1] like every AU model.

Shapes for a 32x32x3 input::

    normalize (N, 3, 32, 32)
    conv1     (N, 64, 32, 32)   conv1_bn, conv1_relu, pool1 -> (N, 64, 16, 16)
    conv2     (N, 128, 16, 16)  conv2_bn, conv2_relu, pool2 -> (N, 128, 8, 8)
    conv3     (N, 192, 8, 8)    conv3_bn, conv3_relu
    conv4     (N, 192, 8, 8)    conv4_bn, conv4_relu
    conv5     (N, 128, 8, 8)    conv5_bn, conv5_relu, pool3 -> (N, 128, 4, 4), flatten -> (N, 2048)
    fc1       (N, 512)          drop1 before, fc1_relu
    fc2       (N, 256)          drop2 before, fc2_relu
    logits    (N, num_classes)
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from au.models.normalize import Normalize

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class AlexNetCifar(nn.Sequential):
    """AlexNet-style CNN for 32x32 colour images (any HxW divisible by 8 works).

    Parameters
    ----------
    input_shape : (C, H, W)
    num_classes : int
    """

    def __init__(self, input_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10) -> None:
        c, h, w = input_shape
        mean = CIFAR10_MEAN if c == 3 else (0.5,) * c
        std = CIFAR10_STD if c == 3 else (0.25,) * c
        flat = 128 * (h // 8) * (w // 8)
        super().__init__(
            OrderedDict(
                normalize=Normalize(mean, std),
                conv1=nn.Conv2d(c, 64, kernel_size=5, padding=2),
                conv1_bn=nn.BatchNorm2d(64),
                conv1_relu=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(64, 128, kernel_size=5, padding=2),
                conv2_bn=nn.BatchNorm2d(128),
                conv2_relu=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                conv3=nn.Conv2d(128, 192, kernel_size=3, padding=1),
                conv3_bn=nn.BatchNorm2d(192),
                conv3_relu=nn.ReLU(),
                conv4=nn.Conv2d(192, 192, kernel_size=3, padding=1),
                conv4_bn=nn.BatchNorm2d(192),
                conv4_relu=nn.ReLU(),
                conv5=nn.Conv2d(192, 128, kernel_size=3, padding=1),
                conv5_bn=nn.BatchNorm2d(128),
                conv5_relu=nn.ReLU(),
                pool3=nn.MaxPool2d(2),
                flatten=nn.Flatten(),
                drop1=nn.Dropout(0.5),
                fc1=nn.Linear(flat, 512),
                fc1_relu=nn.ReLU(),
                drop2=nn.Dropout(0.5),
                fc2=nn.Linear(512, 256),
                fc2_relu=nn.ReLU(),
                logits=nn.Linear(256, num_classes),
            )
        )
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, num_classes)
        return super().forward(x)
