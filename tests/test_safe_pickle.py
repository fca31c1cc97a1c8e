"""The restricted unpickler loads plain arrays and refuses everything that could run code."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from au import AUError
from au.data.safe_pickle import safe_loads


class _Exploit:
    """Unpickling this would run os.system (touching a marker file) under plain pickle.loads."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_plain_arrays_and_containers_load():
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(safe_loads(pickle.dumps(x), "x"), x)
    value = safe_loads(pickle.dumps({"a": [1, 2.5, "s", b"b"], "x": x}, protocol=2), "d", encoding="bytes")
    assert value["a"] == [1, 2.5, "s", b"b"]


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    with pytest.raises(AUError, match="refused global (posix|os).system"):
        safe_loads(payload, "evil.pkl")
    assert not marker.exists()


def test_exploit_hidden_inside_a_dict_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": np.zeros(3), "x": _Exploit(str(marker))})
    with pytest.raises(AUError, match="refused"):
        safe_loads(payload, "evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load")])
def test_other_globals_are_refused(module, name):
    payload = (
        b"\x80\x04\x95"
        + b"\x00" * 8
        + f"\x8c{chr(len(module))}{module}\x8c{chr(len(name))}{name}\x93.".encode("latin1")
    )
    with pytest.raises(AUError, match=f"refused global {module}.{name}"):
        safe_loads(payload, "evil.pkl")


def test_object_arrays_are_refused():
    payload = pickle.dumps(np.array([1, "a", None], dtype=object))
    with pytest.raises(AUError, match="objects"):
        safe_loads(payload, "obj.pkl")


def test_damaged_pickle_is_a_clear_error():
    with pytest.raises(AUError, match="damaged"):
        safe_loads(pickle.dumps(np.zeros(10))[:-5], "cut.pkl")
