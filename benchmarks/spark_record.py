"""Recording on Spark local[2] against the local engine on the same 2 cores, in one process, alternating.

Both engines record the same model over the same images - all 60,000 MNIST training images by
default, read from an images table (``au export``) - with the same layers, pooling, dtype and
batch size, into fresh directories (disk included):

* local - :func:`au.activations.record` in this process, torch on every core;
* spark - :func:`au.engines.spark.record.record_spark` on ``local[2]``: two Python workers, one
  core and one torch thread each, fed Arrow batches by the JVM, written by Spark's committer.

One Spark session serves every round. Its start-up, and a first small recording that starts its
Python workers (each imports torch and builds the model once, as this process already has), are
printed on their own. Rounds alternate the engines; printed per round are both times, and the
median ratio of Spark's throughput to the local engine's (target >= 0.6). The local engine is
timed twice over: recording images already decoded in memory (the ratio the target is checked
against), and with the decoding of the images table too, as ``au record --data parquet:TABLE``
does and as every Spark task does. A sampling thread reads the peak resident size (``VmHWM``) of
every Spark Python worker: printed for the timed recording and for a recording of 10,000 images'
unpooled conv maps (float32), the worst case for a worker's memory (target < 2 GB).

    python benchmarks/spark_record.py [--run RUN_DIR] [--limit 60000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

from au import data
from au.activations import RecordConfig, record
from au.allocator import tune_malloc
from au.data.images_table import write_images_table
from au.engines.spark.record import record_spark
from au.engines.spark.session import session
from au.models import build_model
from au.train import load_run

MASTER = "local[2]"


class WorkerMemory:
    """The largest peak RSS (VmHWM) of any Spark Python worker seen while running, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    cmd = (status.parent / "cmdline").read_bytes()
                    if b"pyspark" not in cmd or b"java" in cmd.split(b"\0")[0]:
                        continue
                    for line in status.read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", type=Path, help="a run directory (default: mnist-cnn, seeded random weights)"
    )
    parser.add_argument("--limit", type=int, default=60000, help="MNIST training images to record")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layers", default="conv1,conv2,fc1,logits")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    tune_malloc()
    model = load_run(args.run).model if args.run else build_model("mnist-cnn", (1, 28, 28), 10, seed=0)
    train = data.load("mnist", "train")
    train = train.subset(range(min(args.limit, len(train))))
    config = RecordConfig(
        layers=tuple(args.layers.split(",")), pool="avg", dtype="float16", batch_size=args.batch_size
    )
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        table = scratch / "images.parquet"
        write_images_table(train, table, show_progress=False)
        local_data = data.load(f"parquet:{table}", "all")
        print(
            f"{len(train):,} MNIST training images, layers {args.layers} (avg-pooled, float16), batch {args.batch_size}"
        )
        print(f"local engine: {torch.get_num_threads()} torch threads; spark: {MASTER}, one thread per task")
        start = time.perf_counter()
        with session(MASTER, "au benchmark") as spark:
            print(f"spark session start-up: {time.perf_counter() - start:.1f} s")
            spark.range(1).count()  # the JVM warmed up once, outside the timed rounds
            t0 = time.perf_counter()
            record_spark(model, table, scratch / "warm-up", replace(config, limit=2 * args.batch_size),
                         split="all", master=MASTER)  # fmt: skip
            print(
                f"spark warm-up (Python workers start, import torch, build the model): {time.perf_counter() - t0:.1f} s"
            )
            ratios, ratios_decoding = [], []
            with WorkerMemory() as memory:
                for r in range(args.rounds):
                    t0 = time.perf_counter()
                    record(model, local_data, scratch / f"local-{r}", config, show_progress=False)
                    t_local = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    record(model, data.load(f"parquet:{table}", "all"), scratch / f"decoding-{r}", config,
                           show_progress=False)  # fmt: skip
                    t_decoding = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    record_spark(model, table, scratch / f"spark-{r}", config, split="all", master=MASTER)
                    t_spark = time.perf_counter() - t0
                    ratios.append(t_local / t_spark)
                    ratios_decoding.append(t_decoding / t_spark)
                    print(
                        f"round {r}: local {t_local:5.1f} s ({len(train) / t_local:5.0f} img/s), "
                        f"with decoding {t_decoding:5.1f} s   spark {t_spark:5.1f} s ({len(train) / t_spark:5.0f} img/s)   "
                        f"spark/local throughput {ratios[-1]:.2f}x, against local with decoding {ratios_decoding[-1]:.2f}x"
                    )
            median = statistics.median(ratios)
            print(
                f"median spark/local throughput: {median:.2f}x (target >= 0.6: {'MET' if median >= 0.6 else 'NOT MET'}); "
                f"against the local engine decoding the table too: {statistics.median(ratios_decoding):.2f}x"
            )
            print(f"peak RSS of a Spark Python worker, pooled recording: {memory.peak_kb / 1024**2:.2f} GB")
            unpooled = RecordConfig(
                layers=("conv2",), pool="none", dtype="float32", batch_size=args.batch_size, limit=10000
            )
            with WorkerMemory() as memory:
                t0 = time.perf_counter()
                record_spark(model, table, scratch / "unpooled", unpooled, split="all", master=MASTER)
                seconds = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in (scratch / "unpooled").rglob("*.parquet")) / 1024**3
            print(
                f"unpooled conv2 of 10,000 images (float32, {size:.1f} GB written) in {seconds:.0f} s: "
                f"peak RSS of a Spark Python worker {memory.peak_kb / 1024**2:.2f} GB (target < 2 GB)"
            )


if __name__ == "__main__":
    main()
