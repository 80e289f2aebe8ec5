#!/usr/bin/env bash
# One node of 8 GPUs (GPUS_PER_NODE to change): stage 1 as DeepScaleR ran it; stage 2 works too, slower than on
# 4 nodes. Usage: run_1node.sh [--method eprli|grpo] [--stage 1|2] [--from-checkpoint DIR] [--dry-run | --rehearse]
#                              [hydra overrides...]   (see common.sh and docs/recipes.md)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
OVERRIDES+=("trainer.nnodes=1" "trainer.n_gpus_per_node=${GPUS_PER_NODE:-8}")
run_recipe "$PYTHON"
