"""The job protocol: claiming a directory, resuming, refusing, and the manifest written last."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from au import jobs
from au.errors import AUError


def _job(out, **identity):
    return jobs.Job("demo", out, {"seed": 0, **identity}, label="toy job")


def test_claim_finish_and_the_finished_job_untouched(tmp_path):
    out = tmp_path / "j"
    claim = jobs.claim(_job(out))
    assert not claim.done and not claim.resumed
    marker = json.loads((out / jobs.INCOMPLETE).read_text())
    assert marker["job_key"] == claim.job.key and marker["identity"] == {"seed": 0}
    claim.path("result.txt").write_text("42")
    claim.path("scratch.bin").write_bytes(b"x")
    manifest = claim.finish({"answer": 42}, outputs=["result.txt"], scratch=["scratch.bin"])
    assert not (out / jobs.INCOMPLETE).exists() and not (out / "scratch.bin").exists()
    assert json.loads((out / jobs.MANIFEST).read_text()) == json.loads(json.dumps(manifest))
    assert manifest["kind"] == "demo" and manifest["answer"] == 42 and manifest["identity"] == {"seed": 0}
    assert manifest["outputs"]["result.txt"]["bytes"] == 2
    assert {"started", "finished", "seconds", "resumed"} <= set(manifest["times"])
    assert {"python", "platform", "versions"} <= set(manifest["environment"])
    assert manifest["environment"]["versions"]["torch"]

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = jobs.claim(_job(out))
    assert again.done and again.manifest == manifest
    with pytest.raises(AssertionError):
        again.finish({})  # a finished job writes nothing
    with pytest.raises(
        AUError, match=r"already holds a finished toy job \(different seed\), not this toy job"
    ):
        jobs.claim(_job(out, seed=1))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert jobs.read_manifest(out, "demo", verify=True) == manifest
    (out / "result.txt").write_text("43")
    with pytest.raises(AUError, match="result.txt is missing or changed"):
        jobs.read_manifest(out, "demo", verify=True)


def test_unfinished_jobs_resume_and_others_are_refused(tmp_path):
    out = tmp_path / "j"
    first = jobs.claim(_job(out))
    first.path("part-0").write_text("kept")
    resumed = jobs.claim(_job(out))
    assert resumed.resumed and not resumed.done and resumed.started == first.started
    assert (out / "part-0").read_text() == "kept"
    with pytest.raises(AUError, match="holds an unfinished toy job .* re-run that job"):
        jobs.claim(_job(out, seed=2))
    with pytest.raises(AUError, match="is unfinished .* re-run the same 'au demo' command"):
        jobs.read_manifest(out, "demo")
    assert resumed.finish({})["times"]["resumed"] is True


def test_unrelated_directories_and_other_kinds_are_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(AUError, match="exists and is not an AU job directory"):
        jobs.claim(_job(mine))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(AUError, match="not an AU job directory"):
        jobs.claim(_job(tmp_path / "file"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not jobs.claim(_job(empty)).done  # an empty directory may be claimed
    jobs.claim(jobs.Job("train", tmp_path / "t", {})).finish({})
    with pytest.raises(AUError, match="holds the output of 'au train', not of 'au gold'"):
        jobs.read_manifest(tmp_path / "t", "gold")
    with pytest.raises(AUError, match="not a finished AU gold directory"):
        jobs.read_manifest(mine, "gold")
    with pytest.raises(AUError, match="does not exist; pass the --out of 'au gold'"):
        jobs.read_manifest(tmp_path / "nothing", "gold")
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text('{"format": "au-run/1", "kind": "train"}')
    with pytest.raises(AUError, match="written by another version of AU .* re-run 'au train' into a new"):
        jobs.read_manifest(old, "train")


_ENGINE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    out, die = Path(sys.argv[1]), sys.argv[2] == "die"
    for i in range(4):  # another process writes the job's table, part by part, committing each by rename
        tmp = out / f".part-{i}.tmp"
        tmp.write_text(f"rows {i}")
        tmp.replace(out / f"part-{i}")
        if die and i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_another_engine_computes_while_the_protocol_owns_the_directory(tmp_path):
    """Outputs written by another process count only once the protocol writes the manifest."""
    out = tmp_path / "j"
    claim = jobs.claim(_job(out))
    engine = subprocess.run([sys.executable, "-c", _ENGINE, str(out), "die"])
    assert engine.returncode == -signal.SIGKILL
    # the engine died half-way: the directory is unfinished, never mistaken for complete
    with pytest.raises(AUError, match="is unfinished"):
        jobs.read_manifest(out, "demo")
    resumed = jobs.claim(_job(out))
    assert resumed.resumed and sorted(os.listdir(out)) == [jobs.INCOMPLETE, "part-0", "part-1"]
    assert subprocess.run([sys.executable, "-c", _ENGINE, str(out), "live"]).returncode == 0
    parts = [f"part-{i}" for i in range(4)]
    manifest = resumed.finish({"parts": 4}, outputs=parts)
    assert set(manifest["outputs"]) == set(parts) and claim.job.key == resumed.job.key
