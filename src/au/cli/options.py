"""Argument types shared by the sub-commands: each refuses a bad value with one line, and argparse exits 2."""

from __future__ import annotations

import argparse
import math

from au.errors import AUError
from au.train.config import AUGMENTATIONS


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def checked(check):
    """An argument type made from a settings check that refuses with :class:`AUError`: its one line, exit 2."""

    def convert(text: str):
        try:
            return check(text)
        except AUError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = check.__name__  # argparse names the type in its messages
    return convert


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0 (a seed, a size that may be zero)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not an integer >= 0")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (a learning rate)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number > 0")
    return value


def finite_number(text: str) -> float:
    """Any finite number (a scale factor)."""
    return _number(text)


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (a noise level)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1]."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]")
    return value


def open_fraction(text: str) -> float:
    """A number in (0, 1): a probability such as delta, epsilon or a target accuracy."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1)")
    return value


def unit_fraction(text: str) -> float:
    """A number in [0, 1): a share that may be zero, such as a validation fraction."""
    value = _number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1)")
    return value


def _list(text: str, item, what: str) -> tuple:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}")
    return tuple(item(p) for p in parts)


def fraction_list(text: str) -> tuple[float, ...]:
    """Comma-separated numbers in (0, 1], e.g. ``0.01,0.1,1``."""
    return _list(text, fraction, "numbers in (0, 1]")


def open_fraction_list(text: str) -> tuple[float, ...]:
    """Comma-separated numbers in (0, 1), e.g. ``0.01,0.02``."""
    return _list(text, open_fraction, "numbers in (0, 1)")


def nonneg_float_list(text: str) -> tuple[float, ...]:
    """Comma-separated finite numbers >= 0, e.g. ``0,0.25,1``."""
    return _list(text, nonneg_float, "numbers >= 0")


def nonneg_int_list(text: str) -> tuple[int, ...]:
    """Comma-separated integers >= 0, e.g. ``3,17`` (unit indices)."""
    return _list(text, nonneg_int, "integers >= 0")


def names(text: str) -> tuple[str, ...]:
    """Comma-separated names (empty allowed), e.g. ``msp,knn``."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


ENGINES = ("local", "spark")
DEFAULT_MASTER = "local[*]"


def add_engine(p: argparse.ArgumentParser, what: str) -> None:
    """``--engine local|spark`` and ``--master URL`` (used with ``--engine spark``); see :func:`check_engine`."""
    p.set_defaults(parser=p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=ENGINES[0],
        help=f"where {what} runs: this process (local, default) or Apache Spark (spark)",
    )
    p.add_argument(
        "--master",
        help=f"Spark master with --engine spark: local[N], spark://HOST:PORT or k8s://https://HOST:PORT "
        f"(default {DEFAULT_MASTER})",
    )


def check_engine(args: argparse.Namespace, spark_only: dict, local_only: dict) -> str | None:
    """The Spark master, or None for the local engine; options given to the wrong engine exit 2.

    ``spark_only`` / ``local_only`` map option names (``--images``) to their parsed values.
    """
    if args.engine == "local":
        wrong = [name for name, value in {"--master": args.master, **spark_only}.items() if value is not None]
        if wrong:
            args.parser.error(f"{wrong[0]} needs --engine spark")
        return None
    wrong = [name for name, value in local_only.items() if value is not None]
    if wrong:
        args.parser.error(f"{wrong[0]} is not available with --engine spark")
    return args.master or DEFAULT_MASTER


def add_augment(p: argparse.ArgumentParser) -> None:
    """``--augment none|crop-flip``; left unset, the model's own (none for mnist-cnn, crop-flip for alexnet-cifar)."""
    p.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        help="training-time augmentation: crop-flip = random crops of the 4-pixel padded image and horizontal "
        "flips (default: the model's own; none for mnist-cnn, crop-flip for alexnet-cifar)",
    )
