"""Data preparation: public math data sets (raw schemas of docs/data.md) -> verl parquet rows for the recipes.

Pure except ``io`` (reads local files or Hugging Face data sets, writes parquet); imports no verl.
"""
