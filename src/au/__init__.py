"""AU, "Search for Gold": how a convolutional network's training data relates to its accuracy.

The package follows the pipeline, one sub-package per stage::

    au.data      datasets as uint8 image arrays, loaded offline from a spec string
    au.models    named-layer CNNs and safetensors weights
    au.train     deterministic, resumable training into a run directory
    au.report    plots and the self-contained HTML report

``au.runs`` reads a finished run directory back; ``au.cli`` is the ``au`` command.
"""

from au.errors import AUError

__version__ = "0.1.0"

__all__ = ["AUError", "__version__"]
