"""How long ``au --help`` and ``au COMMAND --help`` take to answer, beside what importing torch costs.

The ``au`` command imports only the chosen sub-command's module, and that module imports torch and
the stage's job only when it runs, so help answers without loading torch. Each command below runs
``--runs`` times in fresh processes, alternating, and the script prints the median wall time of
each (target: under 1 s for every help) and, as the reference, the median of ``python -c "import
torch"`` - what every help would cost if it imported torch - with the ratio help / torch import.

    python benchmarks/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "au --help": ["-m", "au", "--help"],
    "au train --help": ["-m", "au", "train", "--help"],
    "au score --help": ["-m", "au", "score", "--help"],
    "au gold --help": ["-m", "au", "gold", "--help"],
    "au demo --help": ["-m", "au", "demo", "--help"],
    "import torch (reference)": ["-c", "import torch"],
}


def seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # alternate, so that a busy moment of the machine hits every command alike
        for name, args in COMMANDS.items():
            times[name].append(seconds(args))
    torch_import = statistics.median(times["import torch (reference)"])
    print(f"median of {runs} runs, fresh process each")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<26} {median:6.3f} s   {median / torch_import:5.2f}x importing torch")
    worst = max(statistics.median(v) for k, v in times.items() if "help" in k)
    print(f"slowest help: {worst:.3f} s ({'under' if worst < 1 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
