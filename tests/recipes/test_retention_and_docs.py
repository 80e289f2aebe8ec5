"""Checkpoint retention and save cadence of the composed recipes, and ``--thinking required`` in every documented
``verl-pdai eval`` command (issue 11, findings 3 and 4)."""

from __future__ import annotations

import re

import pytest

from tests.recipes.recipe_files import RECIPE_DIR, RECIPES
from verl_pdai.recipes.compose import compose

REPO = RECIPE_DIR.parents[1]
CHECKPOINT_GB = 18  # fp32 shards + Adam state of 1.5B parameters, the estimate docs/recipes.md gives


@pytest.mark.parametrize("hardware", [[], ["+hardware=one_gpu"]], ids=["8gpu", "1gpu"])
@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_bounds_its_checkpoints(name: str, hardware: list[str]) -> None:
    trainer = compose(RECIPE_DIR, name, hardware).trainer
    # before: verl's default null kept every save, ~50 x 18 GB in stage 1
    assert trainer.max_actor_ckpt_to_keep == 3 and trainer.max_critic_ckpt_to_keep == 3
    assert trainer.save_freq == (20 if name.endswith("stage1") else 10)
    assert trainer.max_actor_ckpt_to_keep * CHECKPOINT_GB <= 60  # GB a run keeps at most


def _eval_commands(text: str) -> list[str]:
    """Each ``verl-pdai eval`` command of a markdown text: an inline code span, or a shell line with its ``\\``
    continuations."""
    commands = re.findall(r"`(verl-pdai eval [^`]*)`", text)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith("verl-pdai eval "):
            command = line
            while command.rstrip().endswith("\\") and index + 1 < len(lines):
                index += 1
                command = command.rstrip()[:-1] + " " + lines[index].strip()
            commands.append(command)
    return commands


def test_every_documented_eval_command_grades_as_the_recipes_train() -> None:
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    found = {(path.name, c) for path in files for c in _eval_commands(path.read_text(encoding="utf-8"))}
    commands = {(name, c) for name, c in found if "--model" in c}  # a command, not a mention of an option
    assert len(commands) >= 5  # README, recipes.md, the three of evaluation.md
    missing = sorted(f"{name}: {command}" for name, command in commands if "--thinking required" not in command)
    assert not missing, "add --thinking required (the recipes' reward_kwargs.thinking):\n" + "\n".join(missing)
