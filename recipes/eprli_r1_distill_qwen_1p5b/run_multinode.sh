#!/usr/bin/env bash
# Several nodes on an existing Ray cluster (DeepScaleR's stage 2 used 4 nodes of 8 GPUs). Start Ray on every node
# first (`ray start --head` on one, `ray start --address HEAD:6379` on the others), with verl-pdai installed on
# all of them and DATA_DIR, MODEL_PATH and CKPT_DIR on a filesystem every node sees.
#   RAY_ADDRESS=http://HEAD:8265 run_multinode.sh ...   submits with `ray job submit` (the default)
#   RAY_ADDRESS=HEAD:6379 SUBMIT=0 run_multinode.sh ...   runs the driver here; ray.init() joins the cluster
# NNODES (default 4), GPUS_PER_NODE (default 8). Other options as run_1node.sh (see common.sh, docs/recipes.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NNODES="${NNODES:-4}"
OVERRIDES+=("trainer.nnodes=$NNODES" "trainer.n_gpus_per_node=${GPUS_PER_NODE:-8}")
if [ -z "${RAY_ADDRESS:-}" ] && [ "$REHEARSE" != 1 ]; then  # the rehearsal starts a Ray of its own
  if [ "$DRY_RUN" = 1 ]; then
    echo "warning: RAY_ADDRESS is not set (needed for a real launch)" >&2
  else
    echo "error: set RAY_ADDRESS to the running cluster (http://HEAD:8265 for ray job submit)" >&2
    exit 2
  fi
fi
if [ "${SUBMIT:-1}" = 1 ]; then
  # the job's workers get the same paths through the runtime environment too
  ENV_JSON="{\"env_vars\": {\"DATA_DIR\": \"$DATA_DIR\", \"MODEL_PATH\": \"$MODEL_PATH\", \"CKPT_DIR\": \"$CKPT_DIR\"}}"
  run_recipe ray job submit --address "${RAY_ADDRESS:-<unset>}" --runtime-env-json "$ENV_JSON" -- "$PYTHON"
else
  export RAY_ADDRESS
  run_recipe "$PYTHON"
fi
