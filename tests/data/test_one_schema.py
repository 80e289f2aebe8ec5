"""One schema for every prepared file: the files ``prepare-data`` writes from the raw samples of every schema load
together through verl's own loader (``create_rl_dataset`` -> ``RLHFDataset``: concatenation, the real Qwen2.5
tokenizer's chat template, over-long prompt filter; then verl's ``collate_fn``), and every accepted answer of
``extra_info.answers`` is graded correct by the reward and by evaluation (issue 11, finding 1)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import qwen_tokenizer_dir
from tests.recipes.recipe_files import RECIPE_DIR
from verl_pdai.api import compute_score
from verl_pdai.cli import main
from verl_pdai.data.rows import level_prior

BENCHMARKS = ("aime2024", "math500", "amc", "minerva", "olympiadbench")
# hendrycks MATH ships no raw sample: the one raw schema the samples lack, written here
MATH_RAW = [
    {"problem": "What is $2+3$?", "solution": "Adding, $2+3=\\boxed{5}$.", "level": "Level 2"},
    {"problem": "What is $6 \\cdot 7$?", "solution": "It is $\\boxed{42}$.", "level": "Level ?"},
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """train.parquet of DeepScaleR and of hendrycks MATH, and the five benchmark files, all by prepare-data."""
    out = tmp_path_factory.mktemp("prepared")
    assert main(["prepare-data", "--samples", "--out", str(out)]) == 0
    raw = tmp_path_factory.mktemp("raw") / "math.jsonl"
    raw.write_text("".join(json.dumps(row) + "\n" for row in MATH_RAW), encoding="utf-8")
    math_out = tmp_path_factory.mktemp("prepared_math")
    assert main(["prepare-data", "--samples", "--out", str(math_out), "--train", f"math={raw}"]) == 0
    return [out / "train.parquet", math_out / "train.parquet", *(out / f"{name}.parquet" for name in BENCHMARKS)]


@pytest.fixture(scope="module")
def data_config(tmp_path_factory: pytest.TempPathFactory):
    """The shipped recipe's data section, composed as main_ppo composes it."""
    from verl_pdai.recipes.compose import compose

    old = os.environ.get("DATA_DIR")
    os.environ["DATA_DIR"] = str(tmp_path_factory.mktemp("unused"))
    try:
        return compose(RECIPE_DIR, "eprli_stage1", []).data
    finally:
        if old is None:
            os.environ.pop("DATA_DIR")
        else:
            os.environ["DATA_DIR"] = old


@pytest.fixture(scope="module")
def verl_tokenizer():
    from verl.utils import hf_tokenizer

    return hf_tokenizer(str(qwen_tokenizer_dir()))


def load(files: list[Path], data_config, tokenizer):
    """verl's dataset exactly as trainer_base._init_dataloader creates the validation set."""
    from verl.trainer.ppo.utils import create_rl_dataset

    return create_rl_dataset([str(f) for f in files], data_config, tokenizer, None, is_train=False)


def rows_in(files: list[Path]) -> int:
    return sum(pq.read_metadata(f).num_rows for f in files)


def test_every_prepared_file_loads_together_through_verl(files, data_config, verl_tokenizer):
    from verl.utils import tensordict_utils as tu
    from verl.utils.dataset.rl_dataset import collate_fn

    dataset = load(files, data_config, verl_tokenizer)
    assert len(dataset) == rows_in(files)  # concatenated, and no prompt dropped by the 1024-token filter
    features = dataset.dataframe.features
    assert features["reward_model"]["ground_truth"].dtype == "string"
    batch = collate_fn([dataset[i] for i in range(len(dataset))])  # one batch mixing every source, as validation
    batch["uid"] = np.array([str(i) for i in range(len(dataset))], dtype=object)
    assert tu.get_tensordict(batch).batch_size[0] == len(dataset)
    assert set(batch["data_source"]) == {"deepscaler", "math", *BENCHMARKS}
    for reward_model, info in zip(batch["reward_model"], batch["extra_info"], strict=True):
        assert isinstance(reward_model["ground_truth"], str) and info["answers"][0] == reward_model["ground_truth"]
    # the chat template really ran: verl keeps the messages, the tokenizer turns them into the model's prompt
    text = verl_tokenizer.apply_chat_template(batch["raw_prompt"][0], add_generation_prompt=True, tokenize=False)
    assert "<｜User｜>" in text or "<|im_start|>" in text


def test_any_two_files_concatenate(files):
    import datasets

    loaded = {f: datasets.load_dataset("parquet", data_files=str(f))["train"] for f in files}
    for a, b in itertools.combinations(files, 2):
        assert len(datasets.concatenate_datasets([loaded[a], loaded[b]])) == len(loaded[a]) + len(loaded[b])


def test_the_old_layout_fails_in_verl(files, data_config, verl_tokenizer, tmp_path):
    """The regression the schema fixes: minerva with a list ground truth, as the old prepare-data wrote it."""
    rows = pq.read_table(files[0].parent / "minerva.parquet").to_pylist()
    for row in rows:
        row["reward_model"]["ground_truth"] = row["extra_info"].pop("answers")
    old = tmp_path / "minerva.parquet"
    pq.write_table(pa.Table.from_pylist(rows), old)  # inferred types, as before
    with pytest.raises(ValueError, match="can't be aligned"):
        load([files[0].parent / "aime2024.parquet", old], data_config, verl_tokenizer)


def test_the_trainer_reads_each_rows_prior(files, data_config, verl_tokenizer):
    """``extra_info.pdai_prior`` is in every row (null without a level); the store starts from it or its default."""
    from verl_pdai.core.store import DifficultyStore, StoreConfig
    from verl_pdai.plugin.trainer_rows import _initial_prior_args

    dataset = load(files, data_config, verl_tokenizer)
    store = DifficultyStore(StoreConfig(default_prior=(1.0, 1.0)))
    seen = set()
    for i in range(len(dataset)):
        row = dataset[i]
        info = row["extra_info"]
        prior = store.initial_prior(**_initial_prior_args(info, row["data_source"]))
        expected = level_prior(info["level"])
        assert prior == ((expected["alpha"], expected["beta"]) if expected else (1.0, 1.0)), info
        seen.add(expected is not None)
    assert seen == {True, False}  # both kinds of row were read


def test_compute_score_accepts_any_answer_of_extra_info():
    info = {"answers": ["10", "12"]}
    assert compute_score("amc", "So $\\boxed{12}$.", "10", info)["acc"] == 1.0
    assert compute_score("amc", "So $\\boxed{12}$.", "10", {})["acc"] == 0.0  # the ground truth alone says wrong
    assert compute_score("amc", "So $\\boxed{11}$.", "10", info)["acc"] == 0.0


def test_reward_manager_accepts_any_answer_of_extra_info(tokenizer_dir, tokenizer):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.utils.ray_utils import get_event_loop

    from tests.plugin.verl_reward_helpers import agent_loop_sample, reward_config

    worker = RewardLoopWorker(reward_config(tokenizer_dir))
    prompt = "Name one even number between 9 and 13. Put it in \\boxed{}."
    ids = tokenizer.encode("Step 1: 12 is even.\n\nSo $\\boxed{12}$.", add_special_tokens=False)

    def acc(extra_info: dict) -> float:
        data = agent_loop_sample(tokenizer, prompt, ids, "10", extra_info=extra_info)
        return get_event_loop().run_until_complete(worker.compute_score_batch(data))[0]["reward_extra_info"]["acc"]

    assert acc({"answers": ["10", "12"]}) == 1.0
    assert acc({"answers": ["10"]}) == 0.0


def test_evaluation_grades_any_answer_of_extra_info(files, tmp_path):
    from verl_pdai.core.scoring import StepwiseConfig
    from verl_pdai.evaluation.checking import CheckJob, check_all
    from verl_pdai.evaluation.data import read_problems

    rows = pq.read_table(files[0].parent / "amc.parquet").to_pylist()
    rows[0]["extra_info"]["answers"] = [rows[0]["reward_model"]["ground_truth"], "7/3"]
    path = tmp_path / "amc.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    problems = read_problems("amc", path)
    assert problems[0].ground_truth == ["142", "7/3"]
    assert problems[1].ground_truth == rows[1]["reward_model"]["ground_truth"]  # one answer: as the file gives it
    jobs = [CheckJob(f"So $\\boxed{{{answer}}}$.", problems[0].ground_truth) for answer in ("7/3", "142", "141")]
    verdicts = check_all(jobs, StepwiseConfig.from_mapping({"num_workers": 1}))
    assert [v.correct for v in verdicts] == [True, True, False]


def test_a_row_key_outside_the_schema_fails_instead_of_vanishing(tmp_path: Path) -> None:
    from verl_pdai.data.io import write_parquet

    with pytest.raises(ValueError, match=r"row keys \['difficulty'\] are not in verl_row_schema"):
        write_parquet([{"data_source": "x", "extra_info": {"difficulty": 3}}], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
