#!/usr/bin/env bash
# One GPU (80 GB): the same method with a smaller batch (hardware/one_gpu.yaml: 16 prompts a step, mini-batch 8).
# Usage: run_1gpu.sh [--method eprli|grpo] [--stage 1|2] [--from-checkpoint DIR] [--dry-run | --rehearse] [hydra overrides...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
OVERRIDES+=("+hardware=one_gpu")
run_recipe "$PYTHON"
