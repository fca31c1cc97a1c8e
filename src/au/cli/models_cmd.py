"""``au models``: the registered architectures and their named layers with output shapes."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("models", help=help_text, description=__doc__)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from au.models import MODELS, build_model, layer_output_shapes

    for name, spec in MODELS.items():
        model = build_model(name)
        params = sum(p.numel() for p in model.parameters())
        shape = "x".join(str(s) for s in spec.input_shape)
        print(f"{name}: {spec.summary}; input {shape}, {params:,} parameters")
        for layer, out in layer_output_shapes(model, spec.input_shape).items():
            print(
                f"  {layer:<12} {type(model.get_submodule(layer)).__name__:<10} -> {'x'.join(map(str, out))}"
            )
    return 0
