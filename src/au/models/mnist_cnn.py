"""``mnist-cnn``: the "mnist simple net" - two 3x3 convolutions, max-pool, two fully connected layers.

The classic Keras ``mnist_cnn`` example, with every layer a named module used once in the forward
pass and no in-place ReLU, so hooks and attribution libraries see each layer separately. Its first
layer normalises by MNIST's pixel mean and deviation (0.1307, 0.3081), which speeds up training.

Shapes for a 28x28x1 input::

    normalize (N, 1, 28, 28)
    conv1     (N, 32, 26, 26)   conv1_relu
    conv2     (N, 64, 24, 24)   conv2_relu
    pool      (N, 64, 12, 12)   drop1 (p=0.25), flatten -> (N, 9216)
    fc1       (N, 128)          fc1_relu, drop2 (p=0.5)
    logits    (N, num_classes)
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from au.models.normalize import Normalize

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class MnistCNN(nn.Sequential):
    """Two-convolution CNN for small grey (or colour) images.

    Parameters
    ----------
    input_shape : (C, H, W)
        Shape of one input image (the model takes float32 (N, C, H, W) in [0, 1]).
    num_classes : int
        Width of the ``logits`` layer.
    """

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10) -> None:
        c, h, w = input_shape
        flat = 64 * ((h - 4) // 2) * ((w - 4) // 2)
        super().__init__(
            OrderedDict(
                normalize=Normalize((MNIST_MEAN,) * c, (MNIST_STD,) * c),
                conv1=nn.Conv2d(c, 32, kernel_size=3),
                conv1_relu=nn.ReLU(),
                conv2=nn.Conv2d(32, 64, kernel_size=3),
                conv2_relu=nn.ReLU(),
                pool=nn.MaxPool2d(2),
                drop1=nn.Dropout(0.25),
                flatten=nn.Flatten(),
                fc1=nn.Linear(flat, 128),
                fc1_relu=nn.ReLU(),
                drop2=nn.Dropout(0.5),
                logits=nn.Linear(128, num_classes),
            )
        )
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, num_classes)
        return super().forward(x)
