"""`verl-pdai check-recipe` on the shipped recipes and on broken copies (CPU only, no model weights)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.recipes.recipe_files import (
    EVAL_FILES,
    RECIPE_DIR,
    RECIPES,
    copy_recipe,
    make_data_dir,
    make_model_dir,
    verl_row,
    write_rows,
)
from verl_pdai.cli import main
from verl_pdai.recipes import data_files
from verl_pdai.recipes.command import check_recipe, render


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture
def env(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR with valid files, MODEL_PATH a local tokenizer + config.json folder, CKPT_DIR empty."""
    data = make_data_dir(tmp_path / "data")
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("MODEL_PATH", str(model_dir))
    monkeypatch.setenv("CKPT_DIR", str(tmp_path / "ckpt"))
    return data


def _skip_verl_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_files, "check_verl_load", lambda config, groups, findings: findings.skip("verl load"))


@pytest.fixture
def no_verl_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """For checks that are not about data: verl's loader (tokenizing every row, ~10 s on 2 cores) is left out."""
    _skip_verl_load(monkeypatch)


def messages(findings) -> list[str]:
    return [f"{p.message} | {p.fix}" for p in findings.problems]


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("hardware", [[], ["+hardware=one_gpu"]], ids=["8gpu", "1gpu"])
def test_every_shipped_recipe_passes(
    env: Path, name: str, hardware: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if hardware:  # the data section does not depend on the hardware: verl's loader runs in the 8-GPU case
        _skip_verl_load(monkeypatch)
    findings, config = check_recipe(RECIPE_DIR, name, hardware)
    assert findings.ok, render(findings, config, name)
    assert config.data.train_files == str(env / "train.parquet")
    assert "model config" in findings.summary  # the local model folder was really converted by HFModelConfig
    assert not any("model" in what for what in findings.not_checked)
    if not hardware:  # verl's RLHFDataset really loaded, filtered and collated every file
        assert findings.summary["verl load (train)"].startswith("160 of 160 rows")
        assert findings.summary["verl load (val)"].startswith("15 of 15 rows")


def test_recipes_select_the_components_and_deepscaler_settings(env: Path, no_verl_load: None) -> None:
    findings, eprli = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    assert findings.ok
    assert eprli.trainer.v1.trainer_mode == "pdai_sync"
    assert eprli.actor_rollout_ref.rollout.agent.default_agent_loop == "pdai_hint"
    assert eprli.reward.reward_manager.name == "pdai_stepwise"
    assert eprli.algorithm.adv_estimator == "epgrpo"
    _, stage2 = check_recipe(RECIPE_DIR, "eprli_stage2", [])
    _, grpo = check_recipe(RECIPE_DIR, "grpo_stage1", [])
    for config in (eprli, stage2, grpo):
        assert config.data.train_batch_size == 128 and config.actor_rollout_ref.actor.ppo_mini_batch_size == 64
        assert config.actor_rollout_ref.actor.optim.lr == pytest.approx(1e-6)
        assert config.actor_rollout_ref.actor.kl_loss_type == "low_var_kl"
        assert config.actor_rollout_ref.rollout.temperature == pytest.approx(0.6)
        val = config.actor_rollout_ref.rollout.val_kwargs
        assert (val.n, val.temperature, val.top_p, val.do_sample) == (16, 0.6, 0.95, True)
        assert len(config.data.val_files) == len(EVAL_FILES)
    assert (eprli.data.max_response_length, eprli.actor_rollout_ref.rollout.n) == (8192, 8)
    assert (stage2.data.max_response_length, stage2.actor_rollout_ref.rollout.n) == (16384, 16)
    # the baseline: verl's stock parts, the project's checker
    assert grpo.trainer.v1.trainer_mode == "sync" and grpo.algorithm.adv_estimator == "grpo"
    assert grpo.reward.custom_reward_function.path == "pkg://verl_pdai.api"
    assert grpo.actor_rollout_ref.rollout.agent.default_agent_loop == "single_turn_agent"
    assert grpo.data.train_batch_size == eprli.data.train_batch_size


def test_unknown_override_key_is_reworded_with_the_fix(env: Path, no_verl_load: None) -> None:
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", ["actor_rollout_ref.rollout.temprature=0.7"])
    (problem,) = findings.problems
    assert "no key `actor_rollout_ref.rollout.temprature`" in problem.message
    assert "actor_rollout_ref.rollout.temperature" in problem.fix and "+actor_rollout_ref" in problem.fix


def test_unknown_key_in_the_yaml_or_added_with_plus(env: Path, no_verl_load: None, tmp_path: Path) -> None:
    recipe = copy_recipe(tmp_path)
    base = recipe / "deepscaler_base.yaml"
    base.write_text(base.read_text().replace("    temperature: 0.6\n", "    temprature: 0.6\n", 1))
    findings, _ = check_recipe(recipe, "eprli_stage1", ["+trainer.totl_epochs=3"])
    text = "\n".join(messages(findings))
    assert "`actor_rollout_ref.rollout.temprature` is not a key" in text
    assert "`trainer.totl_epochs` is not a key" in text
    assert "trainer.total_epochs" in text  # the suggestion


def test_unregistered_agent_loop_is_named_with_the_registered_ones(
    env: Path, no_verl_load: None, tmp_path: Path
) -> None:
    recipe = copy_recipe(tmp_path)
    method = recipe / "method_eprli.yaml"
    method.write_text(method.read_text().replace("default_agent_loop: pdai_hint", "default_agent_loop: pdai_hnt"))
    findings, _ = check_recipe(recipe, "eprli_stage1", [])
    text = "\n".join(messages(findings))
    assert "default_agent_loop='pdai_hnt' is not registered" in text
    assert "did you mean `actor_rollout_ref.rollout.agent.default_agent_loop=pdai_hint`" in text


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.v1.trainer_mode=pdai_snyc", "trainer.v1.trainer_mode='pdai_snyc' is not registered"),
        ("algorithm.adv_estimator=epgrp", "algorithm.adv_estimator='epgrp' is not registered"),
        ("reward.reward_manager.name=pdai_stepwse", "reward.reward_manager.name='pdai_stepwse' is not registered"),
    ],
)
def test_other_unregistered_names(env: Path, no_verl_load: None, override: str, expected: str) -> None:
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", [override])
    assert any(expected in m for m in messages(findings)), messages(findings)


def test_custom_reward_function_must_load(env: Path, no_verl_load: None) -> None:
    findings, _ = check_recipe(RECIPE_DIR, "grpo_stage1", ["reward.custom_reward_function.name=compute_scor"])
    assert any("does not load" in m and "compute_scor" in m for m in messages(findings)), messages(findings)


def test_missing_column_and_missing_file(env: Path) -> None:
    write_rows(env / "minerva.parquet", [verl_row("minerva", i, "test") for i in range(3)], drop=("ability",))
    (env / "amc.parquet").unlink()
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    text = "\n".join(messages(findings))
    assert "minerva.parquet lacks column(s) ['ability']" in text
    assert "amc.parquet does not exist" in text and "verl-pdai prepare-data --out $DATA_DIR" in text


def test_bad_divisibility_reports_every_problem(env: Path, no_verl_load: None) -> None:
    overrides = [
        "trainer.n_gpus_per_node=3",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=2",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=4096",
    ]
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", overrides)
    text = "\n".join(messages(findings))
    assert "ppo_mini_batch_size * rollout.n = 64 * 8 = 512 is not divisible by the data-parallel size 3" in text
    assert "= 2 does not divide 3 GPUs" in text
    assert (
        "ppo_max_token_len_per_gpu=4096" in text
        and "set actor_rollout_ref.actor.ppo_max_token_len_per_gpu >= 9216" in text
    )


def test_fixed_micro_batches_follow_verl_validate_config(env: Path, no_verl_load: None) -> None:
    overrides = [
        "actor_rollout_ref.actor.use_dynamic_bsz=false",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4",
        "data.train_batch_size=100",
        "trainer.n_gpus_per_node=6",
    ]
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", overrides)
    text = "\n".join(messages(findings))
    assert "100 * 8 = 800 is not divisible by 6 GPUs" in text
    assert "verl's validate_config (main_ppo) fails" in text  # verl's own check agrees


def test_pdai_settings_are_parsed(env: Path, no_verl_load: None) -> None:
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", ["+pdai.rollout.preview_sise=3", "pdai.store.decay=1.5"])
    text = "\n".join(messages(findings))
    assert "preview_sise" in text and "pdai.store" in text


def test_stage2_resume_path_must_exist(env: Path, no_verl_load: None, tmp_path: Path) -> None:
    missing = tmp_path / "ckpt" / "global_step_40"
    overrides = ["trainer.resume_mode=resume_path", f"trainer.resume_from_path={missing}"]
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage2", overrides)
    assert any(f"{missing} does not exist" in m for m in messages(findings))
    missing.mkdir(parents=True)
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage2", overrides)
    assert findings.ok and any("pdai_state.json" in w.message for w in findings.warnings)


def test_model_path_that_is_not_local_is_reported_not_checked(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_PATH", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    findings, config = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    assert findings.ok
    assert any("no model at deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in s for s in findings.not_checked)
    assert "not checked: model" in render(findings, config, "eprli_stage1")
    assert any("RLHFDataset" in s and "MODEL_PATH" in s for s in findings.not_checked)  # said, not silently skipped


def test_unknown_config_name_lists_the_recipes(env: Path, no_verl_load: None) -> None:
    findings, config = check_recipe(RECIPE_DIR, "eprli_stage3", [])
    assert config is None
    (problem,) = findings.problems
    assert "eprli_stage1" in problem.fix and "grpo_stage2" in problem.fix


def old_minerva_rows() -> list[dict]:
    """Minerva rows as prepare-data wrote them before one schema: the accepted answers as a list ground truth."""
    rows = [verl_row("minerva", i, "test") for i in range(3)]
    for row in rows:
        row["reward_model"]["ground_truth"] = ["5", "5.0"]
    return rows


def test_benchmark_file_with_a_list_ground_truth_fails_with_the_fix(env: Path) -> None:
    """Issue 11, finding 1: each file is fine alone, verl's concatenation of data.val_files fails. The file is
    written like the others (pandas), so the list ground truth is its only difference."""
    write_rows(env / "minerva.parquet", old_minerva_rows())
    findings, config = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    assert not findings.ok
    (problem,) = [p for p in findings.problems if p.check == "data"]
    assert problem.message.startswith("data.val_files: the files do not concatenate")
    assert problem.message.endswith(
        "minerva.parquet (reward_model.ground_truth is list<item: string> there, string in aime2024.parquet)"
    )
    assert "amc.parquet" not in problem.message  # only the file that differs is named
    assert "verl-pdai prepare-data --out $DATA_DIR" in problem.fix and "extra_info.answers" in problem.fix
    assert "FAILED" in render(findings, config, "eprli_stage1")


def test_a_file_written_by_another_tool_is_named_with_its_column(env: Path) -> None:
    """pandas 3 writes text columns as large_string, pyarrow as string: verl cannot concatenate the two either.
    amc.parquet gets the other one of the two than the files around it, whichever the installed pandas writes."""
    table = pq.read_table(env / "amc.parquet")
    theirs = table.schema.field("data_source").type
    mine = pa.string() if theirs == pa.large_string() else pa.large_string()
    pq.write_table(table.set_column(0, pa.field("data_source", mine), table.column(0).cast(mine)), env / "amc.parquet")
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    (problem,) = [p for p in findings.problems if p.check == "data"]
    assert f"amc.parquet (data_source is {mine} there, {theirs} in aime2024.parquet" in problem.message


def test_verl_loader_itself_reports_what_the_cheap_check_misses(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the one-row concatenation check out of the way, verl's own RLHFDataset fails and is reported."""
    write_rows(env / "minerva.parquet", old_minerva_rows())
    monkeypatch.setattr(data_files, "check_concatenation", lambda paths, key, findings: True)
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    (problem,) = [p for p in findings.problems if p.check == "data"]
    assert problem.message.startswith("data.val_files: verl's RLHFDataset (as main_ppo builds it) fails: ValueError")
    assert "can't be aligned" in problem.message and "verl-pdai prepare-data" in problem.fix


def test_prompts_over_max_prompt_length_are_reported(env: Path) -> None:
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", ["data.max_prompt_length=10"])
    text = "\n".join(messages(findings))
    assert "data.train_files: verl drops all 160 prompts" in text and "data.max_prompt_length=10" in text
    assert "raise data.max_prompt_length" in text


def test_prepared_files_pass_check_recipe(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare-data -> check-recipe: the files written from the raw samples load through verl with the recipe."""
    data = tmp_path / "prepared"
    assert main(["prepare-data", "--samples", "--out", str(data)]) == 0
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("MODEL_PATH", str(model_dir))
    monkeypatch.setenv("CKPT_DIR", str(tmp_path / "ckpt"))
    findings, config = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    data_problems = [p.render() for p in findings.problems if p.check == "data"]
    # the shipped samples have 7 training rows: fewer than a batch of 128 is the only data problem
    assert len(data_problems) == 1 and "7 training rows < data.train_batch_size=128" in data_problems[0]
    assert findings.summary["verl load (train)"] == "7 of 7 rows after the prompt filter; 1 rows collated"
    assert findings.summary["verl load (val)"] == "15 of 15 rows after the prompt filter; 5 rows collated"


def test_checker_keys_on_the_wrong_route_section_fail_at_start_up(env: Path, no_verl_load: None) -> None:
    """Issue 13, finding 3: on the stock route verl hands ``reward.reward_kwargs`` to no custom function, so a
    ``thinking=required`` there would silently do nothing; with pdai_stepwise the mirror mistake is refused too."""
    findings, _ = check_recipe(RECIPE_DIR, "grpo_stage1", ["+reward.reward_kwargs.thinking=required"])
    text = "\n".join(messages(findings))
    assert "reward.custom_reward_function.reward_kwargs.thinking" in text, text
    findings, _ = check_recipe(
        RECIPE_DIR, "eprli_stage1", ["+reward.custom_reward_function.reward_kwargs.thinking=required"]
    )
    assert "set reward.reward_kwargs.thinking instead" in "\n".join(messages(findings))


def test_routing_keys_are_accepted_where_the_reward_reads_them(env: Path, no_verl_load: None) -> None:
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", ["+reward.reward_kwargs.verl_sources=[codecontests]"])
    assert not [m for m in messages(findings) if "verl_sources" in m], messages(findings)


def test_sources_the_reward_hands_to_verl_are_named_at_start_up(env: Path, no_verl_load: None) -> None:
    table = pq.read_table(env / "amc.parquet")
    renamed = pa.array(["codecontests"] * len(table), type=table.schema.field("data_source").type)
    pq.write_table(table.set_column(0, table.schema.field("data_source"), renamed), env / "amc.parquet")
    findings, _ = check_recipe(RECIPE_DIR, "eprli_stage1", [])
    (warning,) = [w for w in findings.warnings if "default_compute_score" in w.message]
    assert "['codecontests']" in warning.message and "verl_sources" in warning.fix  # prepared sources: the checker
    cleared, _ = check_recipe(RECIPE_DIR, "eprli_stage1", ["+reward.reward_kwargs.verl_sources=[]"])
    assert not [w for w in cleared.warnings if "default_compute_score" in w.message]
    stock, _ = check_recipe(RECIPE_DIR, "grpo_stage1", [])  # the stock route's section
    (warning,) = [w for w in stock.warnings if "default_compute_score" in w.message]
    assert "['codecontests']" in warning.message
