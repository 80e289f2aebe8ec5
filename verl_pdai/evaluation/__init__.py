"""``verl-pdai eval``: k samples per problem on the evaluation benchmarks, scored with the project's checker.

Modules, one idea each: ``metrics`` (avg@k, unbiased pass@k; pure), ``data`` (eval parquet rows),
``checking`` (bounded, parallel answer checks), ``backends`` (the generation protocol and a scripted backend),
``hf_backend`` / ``vllm_backend`` (lazy heavy imports), ``checkpoint`` (verl FSDP checkpoint -> HF folder),
``outputs`` (samples.jsonl, summary.json, summary.csv, terminal table), ``runner`` (ties them) and ``command``.
Nothing here imports verl except the checkpoint merger, which runs verl's own merger in a subprocess.
"""
