"""``au explain``: attribution maps of inputs, projections of units, or the low-density backtrace of one input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from au.cli.options import checked, names, nonneg_int, positive_int
from au.explain.config import (
    METHODS,
    SELECTIONS,
    BacktraceConfig,
    ExplainConfig,
    UnitsConfig,
    check_target,
    parse_unit,
)


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "explain",
        help=help_text,
        description="Three modes. By default: attribution maps (captum) of chosen inputs for a target class, "
        "written to attributions.parquet and PNG grids. With --unit and --acts: each unit's strongest inputs in a "
        "recording, projected back with neuron guided backprop and deconvnet (units.parquet). With --backtrace ID: "
        "the input's neuron partitions of lowest parzen_lsh density, projected onto its pixels, with its nearest "
        "training examples there (backtrace.parquet).",
    )
    e, u, b = ExplainConfig, UnitsConfig, BacktraceConfig
    p.add_argument("--run", required=True, type=Path, help="run directory of 'au train'")
    p.add_argument("--data", help="dataset spec of the inputs (default: the run's own)")
    p.add_argument(
        "--split", default="test", choices=("train", "test"), help="split of --data (default test)"
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    g = p.add_argument_group("attributions")
    choice = g.add_mutually_exclusive_group()
    choice.add_argument("--ids", type=names, help="comma-separated example ids to explain")
    choice.add_argument(
        "--select", choices=SELECTIONS, help="choose --limit inputs by correctness or density"
    )
    g.add_argument(
        "--limit", type=positive_int, default=e.limit, help=f"inputs to explain (default {e.limit})"
    )
    g.add_argument(
        "--methods", type=names, default=METHODS, help=f"comma-separated: {','.join(METHODS)} (default all)"
    )
    g.add_argument(
        "--target",
        type=checked(check_target),
        default=e.target,
        help="class explained: pred, label or a class index (default pred)",
    )
    g.add_argument("--gradcam-layer", help="map layer of Grad-CAM (default: the last Conv2d's activation)")
    g.add_argument("--layer", help="feature layer of the density (default: the penultimate layer)")
    g.add_argument(
        "--fit-limit",
        type=positive_int,
        default=e.fit_limit,
        help=f"training examples the density is fitted on (default {e.fit_limit})",
    )
    g.add_argument("--signed-saliency", action="store_true", help="saliency keeps the gradient's sign")
    g.add_argument("--seed", type=nonneg_int, default=e.seed, help=f"default {e.seed}")
    g = p.add_argument_group("unit projection")
    g.add_argument(
        "--unit",
        action="append",
        type=checked(_units),
        help="LAYER:CHANNEL or LAYER:CHANNEL:Y:X (repeat for more units)",
    )
    g.add_argument(
        "--acts", type=Path, help="a finished recording of this run (au record) holding the unit's layer"
    )
    g.add_argument(
        "--top", type=positive_int, default=u.top, help=f"strongest inputs shown per unit (default {u.top})"
    )
    g = p.add_argument_group("low-density backtrace")
    g.add_argument("--backtrace", metavar="ID", help="example id of the input to trace")
    g.add_argument(
        "--partitions",
        type=positive_int,
        default=b.partitions,
        help=f"partitions shown (default {b.partitions})",
    )
    g.add_argument(
        "--neighbours",
        type=positive_int,
        default=b.neighbours,
        help=f"nearest training examples per partition (default {b.neighbours})",
    )
    p.set_defaults(handler=run)


def _units(text: str) -> tuple[str, ...]:
    """``LAYER:CHANNEL[:Y:X]``, comma-separated: each unit checked for its form (the model checks the rest)."""
    return tuple(str(parse_unit(u)) for u in names(text))


def run(args: argparse.Namespace) -> int:
    from au.explain import explain_job
    from au.train.rundir import load_run

    if args.unit and args.backtrace:
        return _usage("--unit and --backtrace are different modes; give one")
    if args.unit and not args.acts:
        return _usage("--unit needs --acts, a recording of this run")
    trained = load_run(args.run)
    who = {
        "model_name": trained.manifest["model"],
        "weights_sha256": trained.manifest["weights"]["sha256"],
        "run_dir": str(args.run),
    }
    if args.unit:
        units = tuple(u for listed in args.unit for u in listed)
        data = _inputs(args.data, _recorded_split(args.acts), trained)[0] if args.data else None
        m = explain_job.explain_units(
            trained.model, args.acts, args.out, UnitsConfig(units=units, top=args.top), data=data, **who
        )
        for unit in m["units"]:
            print(f"{unit['unit']}: mean activation {unit['mean']:.4g}, max {unit['max']:.4g}")
    elif args.backtrace:
        data, train = _inputs(args.data or trained.data_spec, args.split, trained, training=True)
        config = BacktraceConfig(
            example_id=args.backtrace,
            layer=args.layer,
            partitions=args.partitions,
            neighbours=args.neighbours,
            fit_limit=args.fit_limit,
            seed=args.seed,
        )
        m = explain_job.explain_backtrace(trained.model, train, data, args.out, config, **who)
        print(f"{m['example_id']}: z = {m['z']['value']:.2f} at {m['layer']}")
        for part in m["partitions"]:
            print(f"  partition {part['partitioning']}.{part['partition']}: z = {part['z']:.2f}")
    else:
        config = ExplainConfig(
            methods=args.methods,
            target=args.target,
            limit=args.limit,
            ids=args.ids,
            select=args.select,
            layer=args.layer,
            fit_limit=args.fit_limit,
            gradcam_layer=args.gradcam_layer,
            signed_saliency=args.signed_saliency,
            seed=args.seed,
        )
        by_density = args.select in ("lowest-density", "highest-density")
        data, train = _inputs(args.data or trained.data_spec, args.split, trained, training=by_density)
        m = explain_job.explain_inputs(
            trained.model, data, args.out, config, train=train, class_names=trained.class_names, **who
        )
        print(f"{len(m['inputs'])} input(s) x {len(config.methods)} method(s) -> {args.out}")
    print(f"written to {args.out}")
    return 0


def _usage(message: str) -> int:
    print(f"au explain: error: {message} (see 'au explain --help')", file=sys.stderr)
    return 2


def _inputs(spec: str, split: str, trained, training: bool = False):
    """(the ``split`` of ``spec``, the run's own training examples when ``training``), each split loaded once.

    ``spec`` being the run's data gives its own train or test split (a single-split source's test
    carve-out included); any other spec gives the split it has (``all`` for OOD sets).
    """
    from au import data

    own = data.load_train_test(trained.data_spec) if spec == trained.data_spec or training else None
    if spec == trained.data_spec:
        inputs = own[0] if split == "train" else own[1]
    else:
        inputs = data.load(spec, split if split in data.splits(spec) else "all")
    return inputs, trained.training_data(own[0]) if training else None


def _recorded_split(acts) -> str:
    from au import activations

    return activations.open(acts).manifest["dataset"]["split"]
