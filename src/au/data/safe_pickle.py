"""A restricted unpickler for the pickled NumPy arrays that some datasets ship.

Unpickling runs whatever callables a pickle names, so a crafted file can execute code. This
unpickler resolves only the few globals that rebuild a plain NumPy array (``_reconstruct``,
``ndarray``, ``dtype``, and ``_codecs.encode`` for bytes); any other global - ``os.system``, ``builtins.eval``, a class of any
package - is refused before it is called. Dicts, lists, strings and bytes need no globals and
pass. Arrays of dtype ``object`` are refused too: their items would be arbitrary objects.
"""

from __future__ import annotations

import codecs
import io
import pickle
from typing import Any

import numpy as np

from au.errors import AUError

try:  # NumPy >= 2 moved the array internals to numpy._core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes at protocol 2 as _codecs.encode(str, "latin1"): a pure string function.
    ("_codecs", "encode"): codecs.encode,
}


class _Refused(pickle.UnpicklingError):
    pass


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"refused global {module}.{name}: only NumPy arrays may be loaded") from None


def _check_no_objects(value: Any, source: str) -> None:
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        raise AUError(
            f"{source}: refused to load an array of Python objects; only numeric arrays are accepted"
        )
    if isinstance(value, dict):
        for item in value.values():
            _check_no_objects(item, source)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_no_objects(item, source)


def safe_loads(data: bytes, source: str, encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` allowing only NumPy arrays and plain containers.

    Parameters
    ----------
    data : bytes
        The pickle.
    source : str
        Where it came from, for error messages.
    encoding : str
        How to decode Python 2 ``str`` objects (``"bytes"`` keeps them as bytes, as CIFAR-10 needs).
    """
    try:
        value = _NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
    except _Refused as e:
        raise AUError(f"{source}: {e}; the file is not a plain NumPy pickle and was not loaded") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as e:
        raise AUError(f"{source}: damaged pickle ({type(e).__name__}: {e})") from None
    _check_no_objects(value, source)
    return value
