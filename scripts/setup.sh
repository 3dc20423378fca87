#!/usr/bin/env bash
# Set kidsql up on a fresh machine: a virtual environment in .venv (unless one is already active), the right
# torch build, then kidsql itself (editable) with its test extras.
#
# torch: on a machine with no NVIDIA GPU we install the CPU build (torch==2.13.0) BEFORE kidsql, so that pip
# never resolves kidsql's open `torch>=2.2` to a multi-GB CUDA wheel. Where a GPU is present, an existing torch is
# kept as it is, and a missing one is installed as pip's default (the CUDA build). KIDSQL_TORCH overrides the
# requirement string (e.g. KIDSQL_TORCH="torch==2.13.0").
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi

# --no-compile: pip would byte-compile every file it installs (about half of the set-up's time); instead the last
# step imports what kidsql uses with bytecode writing on, which compiles just those modules (also where
# PYTHONDONTWRITEBYTECODE is set, so that later processes do not compile torch again on every import).
pip_install() { python -m pip install --quiet --disable-pip-version-check --no-compile "$@"; }

if ! python -c "import torch" >/dev/null 2>&1; then
  if [ -n "${KIDSQL_TORCH:-}" ]; then
    want="$KIDSQL_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    want="torch"          # GPU present: pip's default build (CUDA)
  else
    want="torch==2.13.0"  # no GPU: the CPU build
  fi
  echo "setup: installing $want"
  pip_install "$want"
fi

echo "setup: installing kidsql and its dependencies"
pip_install -e ".[test]"
echo "setup: byte-compiling the modules kidsql imports"
PYTHONDONTWRITEBYTECODE= python - <<'PY'
import matplotlib.pyplot, torch, kidsql
import kidsql.cli, kidsql.distill.trainer, kidsql.evaluate, kidsql.experiments.bench, kidsql.experiments.demo, kidsql.text2sql  # noqa: F401
from transformers import AutoTokenizer, LlamaForCausalLM, Trainer, TrainingArguments  # noqa: F401 (lazy modules)
print(f"setup: kidsql {kidsql.__version__}, torch {torch.__version__}, cuda={torch.cuda.is_available()}")
PY
