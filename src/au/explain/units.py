"""Unit projection: a unit's strongest inputs in a recording, each projected back to the pixels that drive it.

A unit is a neuron of a fully connected layer (``fc1:17``), a whole channel of a conv layer
(``conv2:5``) or one position of a channel (``conv2:5:3:4``). Its activation on each recorded input
is read from the recording - for a channel, the value the recording pooled (average or max over
the map) - and its ``top`` largest activations are projected back to the input with captum's
neuron guided backprop (Springenberg et al. 2015, arXiv 1412.6806) and neuron deconvolution
(Zeiler & Fergus 2014, arXiv 1311.2901), the visualisation of Zeiler & Fergus's Fig. 2.
"""

from __future__ import annotations

import warnings

import numpy as np
from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop
from torch import nn

from au.activations.reader import Recording
from au.data.dataset import to_tensor
from au.errors import AUError
from au.explain.config import Unit
from au.models.layers import eval_mode, layer_names, layer_output_shapes


def check_unit(model: nn.Module, unit: Unit, input_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The unit's layer output shape, once the layer and every index are known to exist."""
    valid = layer_names(model)
    if unit.layer not in valid:
        raise AUError(
            f"--unit {unit}: unknown layer {unit.layer!r}; the model's layers are: {', '.join(valid)}"
        )
    shape = layer_output_shapes(model, input_shape)[unit.layer]
    if len(shape) == 1:
        if unit.y is not None:
            raise AUError(
                f"--unit {unit}: layer {unit.layer!r} is flat ({shape[0]} units); write {unit.layer}:INDEX"
            )
        if unit.channel >= shape[0]:
            raise AUError(f"--unit {unit}: layer {unit.layer!r} has units 0..{shape[0] - 1}")
        return shape
    if len(shape) != 3:
        raise AUError(
            f"--unit {unit}: layer {unit.layer!r} outputs shape {shape}; units need (F,) or (C, H, W)"
        )
    c, h, w = shape
    if unit.channel >= c:
        raise AUError(f"--unit {unit}: layer {unit.layer!r} has channels 0..{c - 1}")
    if unit.y is not None and not (unit.y < h and unit.x < w):
        raise AUError(f"--unit {unit}: layer {unit.layer!r} has positions Y 0..{h - 1}, X 0..{w - 1}")
    return shape


def recorded_pool(recording: Recording, unit: Unit, shape: tuple[int, ...]) -> str:
    """How the recording stores the unit's layer (``none``, ``avg`` or ``max``), or one line when it cannot
    give the unit's activation (a layer not recorded; one position of a map recorded pooled)."""
    info = recording.layer_info(unit.layer)  # one line when the layer was not recorded
    pool = info["pool"] if len(shape) == 3 else "none"
    if unit.y is not None and pool != "none":
        raise AUError(
            f"--unit {unit}: the recording holds {unit.layer} pooled ({pool}) over space; "
            "record it with --pool none to rank one position"
        )
    return pool


def unit_activations(
    recording: Recording, unit: Unit, shape: tuple[int, ...], pool: str
) -> tuple[np.ndarray, dict]:
    """(the unit's activation on every recorded input (rows,) float64, the rows' ``ids``, ``labels`` and
    ``pred``); ``pool`` is how the recording stores the layer (:func:`recorded_pool`)."""
    values, ids, labels, pred = [], [], [], []
    for part in recording.iter_layer(unit.layer):
        v = part.values
        if len(shape) == 3 and pool == "none":
            v = v.reshape(len(v), *shape)[:, unit.channel]
            v = (
                v[:, unit.y, unit.x]
                if unit.y is not None
                else v.reshape(len(v), -1).astype(np.float64).mean(axis=1)
            )
        else:
            v = v[:, unit.channel]
        values.append(np.asarray(v, dtype=np.float64))
        ids.append(part.ids)
        labels.append(part.labels)
        pred.append(part.pred)
    rows = {"ids": np.concatenate(ids), "labels": np.concatenate(labels), "pred": np.concatenate(pred)}
    return np.concatenate(values), rows


def top_rows(activations: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` largest activations, largest first (ties: earlier row first)."""
    return np.argsort(-activations, kind="stable")[:k]


def selector(unit: Unit, shape: tuple[int, ...], pool: str):
    """captum's neuron selector for the unit: an index, or the channel's map pooled as the recording pooled it."""
    if len(shape) == 1:
        return unit.channel
    if unit.y is not None:
        return (unit.channel, unit.y, unit.x)
    if pool == "max":
        return lambda out: out[:, unit.channel].amax(dim=(1, 2))
    return lambda out: out[:, unit.channel].mean(dim=(1, 2))


def project(model: nn.Module, unit: Unit, shape, pool: str, images: np.ndarray) -> dict[str, np.ndarray]:
    """The unit projected onto each of ``images`` (uint8 (k, H, W, C)): (k, C, H, W) per method."""
    x = to_tensor(images)
    layer = model.get_submodule(unit.layer)
    choose = selector(unit, shape, pool)
    out = {}
    with eval_mode(model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        for name, method in (("guided_backprop", NeuronGuidedBackprop), ("deconvnet", NeuronDeconvolution)):
            maps = method(model, layer).attribute(x.clone().requires_grad_(), neuron_selector=choose)
            out[name] = maps.detach().float().numpy()
    return out


def top_units(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` units (columns of ``values`` (rows, units)) of highest mean activation, highest first."""
    return np.argsort(-np.asarray(values, dtype=np.float64).mean(axis=0), kind="stable")[:k]


def check_recorded_data(recording: Recording, dataset) -> None:
    """Every recorded example is in ``dataset`` (whose images are shown), or one line naming one that is not."""
    missing = np.setdiff1d(recording.ids(), dataset.ids)
    if len(missing):
        raise AUError(
            f"the recording's example {str(missing[0])!r} is not in {dataset.name!r} ({dataset.split}); "
            "pass the dataset it was recorded from with --data"
        )


def images_of(dataset, ids: np.ndarray) -> np.ndarray:
    """The images of ``ids`` (all in ``dataset``: :func:`check_recorded_data`)."""
    position = {example_id: i for i, example_id in enumerate(dataset.ids)}
    return dataset.images[np.array([position[i] for i in ids], dtype=np.int64)]
