"""GPU check: what of verl-pdai runs on a CUDA machine without vLLM, Ray or verl installed.

The device machines this project is lent have torch and transformers but no vLLM, Ray or verl, and what travels to
them is capped at 64 MiB (a vLLM or Ray wheel alone is larger), so the agent loop with a vLLM server and the FSDP
training steps cannot run there. This script runs the parts that need only torch and transformers:

1. ``epgrpo`` (the pure core, ``compute_epgrpo_advantage``) on CUDA at 4096 x 8192, groups of 16: the CUDA result
   equals the CPU result, and the timings of three settings (no hints/no steps, which equals GRPO; hints; hints +
   dense step rewards);
2. ``verl-pdai eval --backend hf`` end to end on CUDA with a random-weight model of DeepSeek-R1-Distill-Qwen-1.5B's
   shape (bf16) and the real Qwen2.5 tokenizer: generation throughput of the HF fallback and the output files.

Usage (on the GPU machine, from the repository root)::

    python benchmarks/gpu_check.py --tokenizer DIR --out DIR

``--smoke`` runs the same steps on the CPU at a tiny size (64 x 256 batch, a 2-layer model of the same vocabulary,
1 sample of 8 tokens per problem, the model and data under ``--out``): a CI check that the script still runs, with
CPU-vs-CPU equality and no meaningful timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def sync(device: str) -> None:
    if device == "cuda":  # kernels are asynchronous: wait before reading the clock
        torch.cuda.synchronize()


def check_epgrpo(batch: int, length: int, group: int, repeats: int, device: str = "cuda") -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_advantage import make_batch

    from verl_pdai.core.advantage import compute_epgrpo_advantage, dense_step_rewards

    args = argparse.Namespace(batch=batch, length=length, group=group, preview=4, hint_tokens=256, steps=40, seed=0)
    data = make_batch(args, torch.device("cpu"))
    fields = data["fields"]
    scores = [json.loads(s) for s in fields["step_scores"]]
    ends = [json.loads(s) for s in fields["step_token_ends"]]
    step_rewards, step_mask = dense_step_rewards(scores, ends, length)
    outcome = data["rewards"].sum(-1)

    def run(device: str, setting: str) -> torch.Tensor:
        mask = data["mask"] if setting == "plain" else data["hint_mask"]
        kwargs: dict = {}
        if setting != "plain":
            kwargs = {"hint_level": data["level"].to(device), "hint_start": data["start"].to(device)}
        if setting == "steps":
            kwargs.update(step_rewards=step_rewards.to(device), step_mask=step_mask.to(device), process_weight=0.2)
        return compute_epgrpo_advantage(outcome.to(device), mask.to(device), data["uid"], **kwargs)[0]

    result: dict = {"shape": f"{batch} x {length}, groups of {group}"}
    for setting in ("plain", "hints", "steps"):
        cpu = run("cpu", setting)
        gpu = run(device, setting)
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)
        times = []
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            run(device, setting)
            sync(device)
            times.append(time.perf_counter() - t0)
        result[setting] = {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times), "equal_cpu": True}
        print(f"epgrpo {setting:6s} {device} median {result[setting]['median_ms']:.1f} ms (equals the CPU result)")
    return result


def build_model(tokenizer_dir: str, folder: Path, device: str = "cuda", tiny: bool = False) -> float:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    # DeepSeek-R1-Distill-Qwen-1.5B's shape (its config.json), random weights; tiny: 2 layers of width 64
    config = Qwen2Config(
        vocab_size=151936,
        hidden_size=64 if tiny else 1536,
        intermediate_size=128 if tiny else 8960,
        num_hidden_layers=2 if tiny else 28,
        num_attention_heads=4 if tiny else 12,
        num_key_value_heads=2,
        max_position_embeddings=131072,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return time.perf_counter() - t0


def check_eval(
    tokenizer_dir: str, out: Path, k: int, max_tokens: int, device: str = "cuda", tiny: bool = False
) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # the full-size model (3 GB) stays out of --out, which travels back from the device machine
    if tiny:
        model_dir, data_dir = out / "tiny_model", out / "data"
    else:
        model_dir, data_dir = Path("/tmp/pdai_gpu_model"), Path("/tmp/pdai_gpu_data")
    build_s = build_model(tokenizer_dir, model_dir, device, tiny)
    suffix = " Let's think step by step and output the final answer within \\boxed{}."
    problems = [(f"What is {a} + {b}?", str(a + b)) for a, b in ((2, 3), (10, 32), (7, 8), (100, 23))]
    rows = [
        {
            "data_source": "math500",
            "prompt": [{"role": "user", "content": text + suffix}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": truth},
            "extra_info": {"split": "test", "index": i, "problem_id": f"gpu/{i}", "reference_solution": ""},
        }
        for i, (text, truth) in enumerate(problems)
    ]
    data_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), data_dir / "math500.parquet")
    eval_out = out / "eval"
    command = [
        sys.executable, "-m", "verl_pdai.cli", "eval", "--model", str(model_dir), "--data-dir", str(data_dir),
        "--benchmarks", "math500", "--out", str(eval_out), "--backend", "hf", "--k", str(k),
        "--max-tokens", str(max_tokens), "--batch-size", str(len(problems)),
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    wall = time.perf_counter() - t0
    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    if done.returncode != 0:
        raise SystemExit(f"eval failed with {done.returncode}")
    samples = [json.loads(line) for line in (eval_out / "samples.jsonl").read_text().splitlines()]
    tokens = sum(sum(s["num_tokens"]) for s in samples)
    assert len(samples) == len(problems) and all(len(s["responses"]) == k for s in samples)
    return {"model_build_and_save_s": build_s, "eval_wall_s": wall, "generated_tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: checks that the script runs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.smoke else "cuda"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke run)"
    report = {"device": name, "torch": torch.__version__, "cpus": os.cpu_count()}
    print(report)
    if args.smoke:
        report["epgrpo"] = check_epgrpo(64, 256, 16, 2, device)
        report["eval_hf"] = check_eval(args.tokenizer, args.out, 1, 8, device, tiny=True)
    else:
        report["epgrpo"] = check_epgrpo(4096, 8192, 16, args.repeats)
        report["eval_hf"] = check_eval(args.tokenizer, args.out, args.k, args.max_tokens)
    print(json.dumps(report, indent=1))
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
