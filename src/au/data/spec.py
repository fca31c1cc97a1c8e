"""Dataset spec strings: ``NAME[:PATH][:KEY=VALUE]...``.

Examples: ``mnist``, ``mnist:/data/MNIST/raw``, ``cifar10:cifar-10-batches-py``,
``imagefolder:/data/pets:size=32x32``, ``noise-gaussian:n=2000:shape=32x32x3:seed=1``.
A part after the name is an option when it reads ``KEY=VALUE`` with a key the source knows;
the other parts, joined by ``:``, are the path.
"""

from __future__ import annotations

from dataclasses import dataclass

from au.errors import AUError


@dataclass(frozen=True)
class DataSpec:
    """A parsed dataset spec. ``options`` maps option names to their (string) values."""

    text: str
    name: str
    path: str | None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    def int_option(self, key: str, default: int) -> int:
        value = self.option(key)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise AUError(f"dataset {self.text!r}: option {key}={value!r} must be an integer") from None

    def shape_option(self, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
        """An option like ``shape=28x28x1`` as a tuple of positive ints."""
        value = self.option(key)
        if value is None:
            return default
        try:
            dims = tuple(int(part) for part in value.lower().split("x"))
        except ValueError:
            dims = ()
        if not dims or any(d <= 0 for d in dims):
            raise AUError(f"dataset {self.text!r}: option {key}={value!r} must look like 28x28 or 28x28x1")
        return dims


def parse_spec(text: str, known_options: tuple[str, ...] = ()) -> DataSpec:
    """Split ``text`` into name, path and the options in ``known_options``."""
    if not text or not text.strip():
        raise AUError("empty dataset spec: name a dataset such as 'mnist' (see 'au datasets')")
    name, _, rest = text.strip().partition(":")
    path_parts: list[str] = []
    options: list[tuple[str, str]] = []
    for part in rest.split(":") if rest else []:
        key, eq, value = part.partition("=")
        if eq and key in known_options:
            options.append((key, value))
        else:
            path_parts.append(part)
    path = ":".join(path_parts) or None
    return DataSpec(text=text.strip(), name=name.lower(), path=path, options=tuple(options))
