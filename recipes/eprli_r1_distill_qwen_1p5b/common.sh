# Shared by run_1node.sh, run_1gpu.sh and run_multinode.sh (sourced, not run). Parses the options, builds the
# hydra overrides for verl.trainer.main_ppo, and handles --dry-run. See docs/recipes.md.
#
# Options: --method eprli|grpo (default eprli)   --stage 1|2 (default 1)
#          --from-checkpoint DIR (stage 2: a stage-1 .../global_step_N folder; default the latest one)
#          --dry-run (compose and check the config with `verl-pdai check-recipe`, print the command, run nothing)
#          anything else (optionally after --) is passed to hydra as an override, e.g. trainer.total_training_steps=10
# Environment: DATA_DIR (default ./data), MODEL_PATH (default deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B),
#          CKPT_DIR (default ./checkpoints), PYTHON (default python3), VERL_PDAI (default: verl-pdai, else
#          "$PYTHON -m verl_pdai.cli").

RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_NAME=verl_pdai_r1_distill_qwen_1p5b  # trainer.project_name in deepscaler_base.yaml
DATA_DIR="$(realpath -m "${DATA_DIR:-$PWD/data}")"
MODEL_PATH="${MODEL_PATH:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}"
if [ -e "$MODEL_PATH" ]; then MODEL_PATH="$(realpath "$MODEL_PATH")"; fi
CKPT_DIR="$(realpath -m "${CKPT_DIR:-$PWD/checkpoints}")"
PYTHON="${PYTHON:-python3}"
if [ -z "${VERL_PDAI:-}" ]; then
  if command -v verl-pdai >/dev/null 2>&1; then VERL_PDAI=verl-pdai; else VERL_PDAI="$PYTHON -m verl_pdai.cli"; fi
fi

METHOD=eprli
STAGE=1
FROM_CHECKPOINT=""
DRY_RUN=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --method) METHOD="$2"; shift 2 ;;
    --stage) STAGE="$2"; shift 2 ;;
    --from-checkpoint) FROM_CHECKPOINT="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; EXTRA+=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$RECIPE_DIR/common.sh"; exit 0 ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
case "$METHOD" in eprli|grpo) ;; *) echo "error: --method must be eprli or grpo, got '$METHOD'" >&2; exit 2 ;; esac
case "$STAGE" in
  1) EXPERIMENT="${METHOD}_stage1_8k" ;;
  2) EXPERIMENT="${METHOD}_stage2_16k" ;;
  *) echo "error: --stage must be 1 or 2, got '$STAGE'" >&2; exit 2 ;;
esac
CONFIG_NAME="${METHOD}_stage${STAGE}"

# Paths are passed explicitly (not only through ${oc.env:...} in the yaml): Ray workers on other nodes do not
# see this shell's environment. The checkpoint folder keeps verl's project/experiment layout.
OVERRIDES=(
  "data.train_files=$DATA_DIR/train.parquet"
  "data.val_files=['$DATA_DIR/aime2024.parquet','$DATA_DIR/math500.parquet','$DATA_DIR/amc.parquet','$DATA_DIR/minerva.parquet','$DATA_DIR/olympiadbench.parquet']"
  "actor_rollout_ref.model.path=$MODEL_PATH"
  "trainer.default_local_dir=$CKPT_DIR/\${trainer.project_name}/\${trainer.experiment_name}"
)

# Stage 2 starts from a stage-1 checkpoint (verl's resume_path: model, optimizer, data loader; the pdai trainer
# also restores pdai_state.json from it). Once stage 2 has saved a checkpoint of its own, a relaunch continues
# stage 2 (resume_mode=auto) instead of starting it over.
if [ "$STAGE" = 2 ]; then
  STAGE1_DIR="$CKPT_DIR/$PROJECT_NAME/${METHOD}_stage1_8k"
  STAGE2_DIR="$CKPT_DIR/$PROJECT_NAME/$EXPERIMENT"
  if [ -f "$STAGE2_DIR/latest_checkpointed_iteration.txt" ] && [ -z "$FROM_CHECKPOINT" ]; then
    OVERRIDES+=("trainer.resume_mode=auto")
  else
    if [ -z "$FROM_CHECKPOINT" ]; then
      if [ -f "$STAGE1_DIR/latest_checkpointed_iteration.txt" ]; then
        FROM_CHECKPOINT="$STAGE1_DIR/global_step_$(tr -d '[:space:]' < "$STAGE1_DIR/latest_checkpointed_iteration.txt")"
      else
        FROM_CHECKPOINT="$STAGE1_DIR/global_step_NONE"
        echo "warning: no stage-1 checkpoint in $STAGE1_DIR (run stage 1 first, or pass --from-checkpoint)" >&2
      fi
    fi
    OVERRIDES+=("trainer.resume_mode=resume_path" "trainer.resume_from_path=$(realpath -m "$FROM_CHECKPOINT")")
  fi
fi

# run_recipe LAUNCHER... : dry run (check + print) or exec LAUNCHER -m verl.trainer.main_ppo with the overrides
run_recipe() {
  local command=("$@" -m verl.trainer.main_ppo --config-path "$RECIPE_DIR" --config-name "$CONFIG_NAME"
                 "${OVERRIDES[@]}" "${EXTRA[@]}")
  if [ "$DRY_RUN" = 1 ]; then
    echo "dry run: would run:"
    printf ' %q' "${command[@]}"; echo
    # shellcheck disable=SC2086  # VERL_PDAI may be "python3 -m verl_pdai.cli"
    $VERL_PDAI check-recipe "$RECIPE_DIR" "$CONFIG_NAME" "${OVERRIDES[@]}" "${EXTRA[@]}"
    return $?
  fi
  exec "${command[@]}"
}
