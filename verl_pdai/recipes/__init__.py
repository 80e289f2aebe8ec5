"""Dry-run checks of a training recipe: ``verl-pdai check-recipe CONFIG_DIR CONFIG_NAME [overrides...]``.

Composes the recipe with hydra exactly as ``python -m verl.trainer.main_ppo --config-path CONFIG_DIR
--config-name CONFIG_NAME overrides...`` would, then checks it without a GPU (see ``docs/recipes.md``):
keys, registered names, data files, batch-size divisibility, verl's own config classes and validation, and the
``pdai`` settings. Every problem is reported with its fix. Heavy imports (hydra, verl) happen inside the checks.
"""

from verl_pdai.recipes.findings import Findings, Problem

__all__ = ["Findings", "Problem"]
