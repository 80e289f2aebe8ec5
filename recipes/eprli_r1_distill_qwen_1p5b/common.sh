# Shared by run_1node.sh, run_1gpu.sh and run_multinode.sh (sourced, not run). Parses the options, builds the
# hydra overrides for verl.trainer.main_ppo, and handles --dry-run and --rehearse. See docs/recipes.md.
#
# Options: --method eprli|grpo (default eprli)   --stage 1|2 (default 1)
#          --from-checkpoint DIR (stage 2: a stage-1 .../global_step_N folder; default the latest one)
#          --dry-run (compose and check the config with `verl-pdai check-recipe`, print the command, run nothing)
#          --rehearse (run the composed config through verl's fit loop on CPU: 2 steps, validation, save, resume;
#                      scratch folder REHEARSAL_DIR, default ./rehearsal; see docs/recipes.md, "Rehearsal")
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
REHEARSE=0
EXTRA=()
# option_value OPTION [VALUE]: VALUE, or exit 2 with the fix when it is missing. The scripts run under `set -u`,
# where reading "$2" past the last argument aborts with "$2: unbound variable" instead of saying what is wrong.
option_value() {
  if [ $# -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then
    local example
    case "$1" in
      --method) example="--method grpo" ;;
      --stage) example="--stage 2" ;;
      *) example="--from-checkpoint \$CKPT_DIR/$PROJECT_NAME/eprli_stage1_8k/global_step_N" ;;
    esac
    echo "error: $1 needs a value, e.g. $example (see --help)" >&2
    exit 2
  fi
  printf '%s' "$2"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --method|--stage|--from-checkpoint)
      value="$(option_value "$@")" || exit 2
      case "$1" in
        --method) METHOD="$value" ;;
        --stage) STAGE="$value" ;;
        *) FROM_CHECKPOINT="$value" ;;
      esac
      shift 2 ;;
    --method=*) METHOD="$(option_value --method "${1#*=}")" || exit 2; shift ;;
    --stage=*) STAGE="$(option_value --stage "${1#*=}")" || exit 2; shift ;;
    --from-checkpoint=*) FROM_CHECKPOINT="$(option_value --from-checkpoint "${1#*=}")" || exit 2; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --rehearse) REHEARSE=1; shift ;;
    --) shift; EXTRA+=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$RECIPE_DIR/common.sh"; exit 0 ;;
    # an unknown option (a typo of --dry-run above all) must not reach hydra and start a real run
    --*) echo "error: unknown option $1 (the options: --method, --stage, --from-checkpoint, --dry-run, --rehearse; hydra" \
              "overrides have no leading dashes, hydra's own flags go after --)" >&2; exit 2 ;;
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
if [ "$DRY_RUN" = 1 ] && [ "$REHEARSE" = 1 ]; then
  echo "error: --dry-run and --rehearse are two checks: run one, then the other (--dry-run first: it is seconds)" >&2
  exit 2
fi
if [ -n "$FROM_CHECKPOINT" ] && [ "$STAGE" != 2 ]; then
  echo "error: --from-checkpoint is for --stage 2 (stage 1 starts from MODEL_PATH); add --stage 2" >&2
  exit 2
fi

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
    # a real launch stops here rather than after Ray and the workers have started; --dry-run lets check-recipe
    # report it together with every other problem
    if [ "$DRY_RUN" != 1 ] && [ "$REHEARSE" != 1 ] && [ ! -d "$FROM_CHECKPOINT" ]; then
      echo "error: the stage-2 starting checkpoint $FROM_CHECKPOINT is not a folder: run stage 1 first, or pass" \
           "--from-checkpoint .../global_step_N" >&2
      exit 2
    fi
    OVERRIDES+=("trainer.resume_mode=resume_path" "trainer.resume_from_path=$(realpath -m "$FROM_CHECKPOINT")")
  fi
fi

# run_recipe LAUNCHER... : dry run (check + print) or exec LAUNCHER -m verl.trainer.main_ppo with the overrides
run_recipe() {
  # ${EXTRA[@]+...}: an empty array is "unbound" under `set -u` in bash < 4.4 (still the default on some clusters)
  local command=("$@" -m verl.trainer.main_ppo --config-path "$RECIPE_DIR" --config-name "$CONFIG_NAME"
                 "${OVERRIDES[@]}" ${EXTRA[@]+"${EXTRA[@]}"})
  if [ "$REHEARSE" = 1 ]; then
    # the same composed config and overrides; the launch-specific ones the rehearsal replaces are printed by it
    # shellcheck disable=SC2086  # VERL_PDAI may be "python3 -m verl_pdai.cli"
    $VERL_PDAI rehearse "$RECIPE_DIR" "$CONFIG_NAME" "${OVERRIDES[@]}" ${EXTRA[@]+"${EXTRA[@]}"} \
      --out "$(realpath -m "${REHEARSAL_DIR:-$PWD/rehearsal}")"
    return $?
  fi
  if [ "$DRY_RUN" = 1 ]; then
    echo "dry run: would run:"
    printf ' %q' "${command[@]}"; echo
    # shellcheck disable=SC2086  # VERL_PDAI may be "python3 -m verl_pdai.cli"
    $VERL_PDAI check-recipe "$RECIPE_DIR" "$CONFIG_NAME" "${OVERRIDES[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
    return $?
  fi
  exec "${command[@]}"
}
