"""Models with named layers, a registry of them, and safetensors weights.

Every AU model takes float32 images (N, C, H, W) in [0, 1] and returns logits (N, num_classes).
Any ``torch.nn.Module`` with named layers works with AU's stages; the registry adds names for the CLI.
"""

from au.models.alexnet_cifar import AlexNetCifar
from au.models.layers import layer_names, layer_output_shapes
from au.models.mnist_cnn import MnistCNN
from au.models.normalize import Normalize
from au.models.registry import MODELS, ModelSpec, build_model, model_spec
from au.models.weights import load_weights, read_metadata, save_weights, sha256_file

__all__ = [
    "MODELS",
    "AlexNetCifar",
    "MnistCNN",
    "ModelSpec",
    "Normalize",
    "build_model",
    "layer_names",
    "layer_output_shapes",
    "load_weights",
    "model_spec",
    "read_metadata",
    "save_weights",
    "sha256_file",
]
