"""Learning benchmark support: the "sum chains" task family, the supervised teaching of a tiny base model and the
held-out evaluator used by ``benchmarks/bench_learning.py``.

``tasks`` is pure (no torch, no verl); ``teaching`` and ``heldout`` import torch/transformers at module import.
"""
