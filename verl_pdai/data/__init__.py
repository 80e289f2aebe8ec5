"""Data preparation: public math data sets (raw schemas of docs/data.md) -> verl parquet rows for the recipes.

Pure except ``io`` (reads local files or Hugging Face data sets, writes parquet) and ``backfill`` (the
``backfill-references`` run: parquet, the checker, the ``eval`` generation backends); imports no verl.
"""
