"""Peak memory and time of ``au score`` on all of MNIST, every detector, in a fresh process.

The command measured is the one the README quotes: ``au score --run RUN --out DIR`` with the
defaults - every detector fitted on MNIST's whole training split (less the 1,000 validation
examples) and scoring its test split and the five default OOD sets. It runs as a subprocess;
printed are its wall time, its peak resident set size (the kernel's high-water mark, what
``/usr/bin/time -v`` reports as "Maximum resident set size") and, from sampling its resident size
while it runs, the highest value within each stage (recording, then each detector's fitting and
scoring), so that a regression points at its stage. Target: under 2 GB.

    python benchmarks/score_memory.py --run runs/demo/train [--detectors all] [--out DIR] [--interval 0.2]

The run needs ``mnist-cnn`` trained on MNIST (``au train --model mnist-cnn --data mnist``; one epoch
is enough to measure memory). Without ``--out`` the scores go to a temporary directory, removed
afterwards, so every run records and fits from scratch.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_GB = 2.0


def resident_bytes(pid: int) -> int:
    """The process's current resident set size (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_score(command: list[str], interval: float) -> tuple[int, float, dict[str, int]]:
    """Run ``command``; return (its peak RSS in bytes, wall seconds, the highest sampled RSS per stage)."""
    env = {**os.environ, "AU_PROGRESS": "0"}
    start = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    stage, peaks, lines = ["starting"], {}, []

    def follow_stages() -> None:  # the job's status lines say which stage runs: "[score] knn: fitting ..."
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("[score]"):
                stage[0] = line.split(":")[0].removeprefix("[score] ") if ": fitting" in line else "recording"

    reader = threading.Thread(target=follow_stages, daemon=True)
    reader.start()
    while proc.poll() is None:
        peaks[stage[0]] = max(peaks.get(stage[0], 0), resident_bytes(proc.pid))
        time.sleep(interval)
    seconds = time.perf_counter() - start
    reader.join(timeout=5)
    if proc.returncode != 0:
        sys.exit(f"au score failed (exit {proc.returncode}):\n{''.join(lines[-20:])}")
    # the high-water mark of the largest finished child, in KiB on Linux: exact, unlike the sampling
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, seconds, peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", type=Path, required=True, help="a trained mnist-cnn run (au train / au demo)"
    )
    parser.add_argument("--detectors", default="all", help="passed to au score (default all)")
    parser.add_argument("--out", type=Path, help="scores directory (default: a temporary one, removed)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between RSS samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="au-score-memory-") as scratch:
        out = args.out or Path(scratch) / "scores"
        command = [sys.executable, "-m", "au", "score", "--run", str(args.run), "--out", str(out)]
        command += ["--detectors", args.detectors]
        peak, seconds, stages = run_score(command, args.interval)
    gb = 2**30
    print(f"au score --run {args.run} --detectors {args.detectors} (all of MNIST, default OOD sets)")
    print(f"  wall time        {seconds / 60:6.1f} min")
    print(
        f"  peak resident    {peak / gb:6.2f} GB  ({'under' if peak / gb < TARGET_GB else 'OVER'} the {TARGET_GB:g} GB target)"
    )
    print("\n  highest sampled resident size per stage:")
    for name, value in stages.items():
        print(f"    {name:<22} {value / gb:6.2f} GB")


if __name__ == "__main__":
    main()
