"""How much the probe costs: capture vs a plain forward, backward_step vs a plain
forward+backward, and capture vs transformers' GPT-2 forward with output_attentions and
output_hidden_states, all on the same gpt2-small weights, measured side by side in one run.

    python benchmarks/bench_probe.py [--sizes 16,128,512,1024] [--threads 2]
                                     [--memory-sizes 128,1024]

Each comparison is timed on its own, its two sides interleaved (plain, capture, plain,
capture, ...) so that drift in the machine's speed hits both alike; each figure is a
median. Then the peak memory of one run of each, above the loaded model, each in a fresh
process (Linux: /proc/self/clear_refs resets the peak). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_core import (
    GPTConfig,
    backward_step,
    capture,
    keep_freed_memory,
    load_model,
)

REPS = {16: 40, 128: 15, 512: 5, 1024: 3}


def build_models(with_hf: bool):
    """Ours, and transformers' GPT-2 holding the same random weights (or None)."""
    if not with_hf:
        return load_model(None, "gpt2-small", seed=0)[0], None
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(attn_implementation="eager")).eval()
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours, _ = load_model(folder)
    return ours, hf


def forward_flops(cfg: GPTConfig, T: int) -> float:
    """Multiply-adds x 2 of one forward: the projections, attention and the output head."""
    e = cfg.emb_dim
    per_block = 2 * T * (4 * e * e + 8 * e * e) + 2 * 2 * T * T * e  # qkvo + ff, QK^T + AV
    return cfg.n_layers * per_block + 2 * T * e * cfg.vocab_size


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    """The machine's reachable matmul rate: the best of several runs (a median would mix
    in whatever else the machine was doing)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def timed(fn) -> float:
    gc.collect()
    gc.disable()  # a collection in the middle of one run would be charged to it
    try:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    del result
    return elapsed


def _prompt(cfg: GPTConfig, T: int) -> list[int]:
    g = torch.Generator().manual_seed(T)
    return torch.randint(0, cfg.vocab_size, (T,), generator=g).tolist()


def cases(model, hf, ids: list[int]) -> dict:
    """The runs compared, by name: each a function of no arguments."""
    x = torch.tensor([ids])

    def plain_forward():
        with torch.inference_mode():
            return model(x)

    def plain_forward_backward():
        loss = F.cross_entropy(model(x)[0, :-1], x[0, 1:])
        loss.backward()
        for p in model.parameters():
            p.grad = None
        return loss

    def hf_captured():
        with torch.inference_mode():
            return hf(x, output_attentions=True, output_hidden_states=True)

    return {
        "plain": plain_forward,
        "capture": lambda: capture(model, ids),
        "plain_fb": plain_forward_backward,
        "backward_step": lambda: backward_step(model, ids),
        "hf": hf_captured,
    }


def measure(model, hf, T: int) -> dict[str, float]:
    """Median milliseconds of each case at prompt length T, runs interleaved."""
    run = cases(model, hf, _prompt(model.cfg, T))
    pairs = [
        (("plain", run["plain"]), ("capture", run["capture"])),
        (("plain_fb", run["plain_fb"]), ("backward_step", run["backward_step"])),
    ]
    if hf is not None:
        pairs.append((("hf", run["hf"]), ("capture_vs_hf", run["capture"])))
    medians = {}
    for pair in pairs:  # each comparison interleaved on its own, so both sides see alike
        medians |= _interleaved(pair, REPS.get(T, 5))
    return medians


MEMORY_CASES = ("plain", "capture", "plain_fb", "backward_step")


def _kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))


def peak_memory_mb(case: str, T: int, threads: int) -> float:
    """Peak resident memory of one run of `case` above the loaded model, in MB, measured in
    a fresh process (memory freed by earlier runs and kept for reuse would hide growth)."""
    command = [sys.executable, __file__, "--memory-case", case, "--sizes", str(T)]
    out = subprocess.run(
        [*command, "--threads", str(threads)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.split()[-1])


def _memory_child(case: str, T: int) -> None:
    keep_freed_memory()  # as the app and the headless commands run
    model = load_model(None, "gpt2-small", seed=0)[0]
    run = cases(model, None, _prompt(model.cfg, T))[case]
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak so far := the memory now
    before = _kib("VmRSS")
    result = run()  # kept while the peak is read, as the app keeps a trace
    peak_mb = (_kib("VmHWM") - before) / 1024
    del result
    print(f"{peak_mb:.1f}")


def _interleaved(pair, repeats: int) -> dict[str, float]:
    """Median milliseconds of two cases run turn about, after one warm-up each."""
    for _, fn in pair:
        fn()
    times = {name: [] for name, _ in pair}
    for _ in range(repeats):
        for name, fn in pair:
            times[name].append(timed(fn))
    return {name: statistics.median(v) * 1000 for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,128,512,1024")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers column")
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc settings alone (the app tunes them)",
    )
    parser.add_argument("--memory-sizes", default="128,1024", help="'' for none")
    parser.add_argument("--memory-case", choices=MEMORY_CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_case:
        _memory_child(args.memory_case, int(args.sizes))
        return
    allocator = (
        "glibc defaults"
        if args.default_allocator
        else ("freed memory kept" if keep_freed_memory() else "keep_freed_memory unavailable")
    )
    try:
        import transformers  # noqa: F401

        with_hf = not args.no_hf
    except ImportError:
        with_hf = False
    model, hf = build_models(with_hf)
    cfg = model.cfg
    print(
        f"gpt2-small, random weights, torch {torch.__version__}, {args.threads} threads, "
        f"allocator: {allocator}"
    )
    peak_matmul = matmul_gflops()
    print(f"large matmul (2048^3): {peak_matmul:.1f} GFLOP/s\n")

    rows = []
    for T in [int(s) for s in args.sizes.split(",")]:
        med = measure(model, hf, T)
        trace = capture(model, _prompt(cfg, T))
        gflops = forward_flops(cfg, T) / (med["plain"] / 1000) / 1e9
        rows.append((T, med, trace.nbytes / 1e6, gflops))
        del trace
        print(f"T = {T} done", file=sys.stderr)

    header = (
        "| T | plain fwd ms | capture ms | capture / plain | HF captured ms | capture / HF "
        "| plain fwd+bwd ms | backward_step ms | backward_step / plain "
        "| GFLOP/s (% of matmul) | trace MB |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for T, med, trace_mb, gflops in rows:
        hf_ms = f"{med['hf']:.0f}" if "hf" in med else "n/a"
        hf_ratio = f"{med['capture_vs_hf'] / med['hf']:.3f}" if "hf" in med else "n/a"
        capture_ratio = med["capture"] / med["plain"]
        print(
            f"| {T} | {med['plain']:.1f} | {med['capture']:.1f} | {capture_ratio:.3f} "
            f"| {hf_ms} | {hf_ratio} | {med['plain_fb']:.0f} | {med['backward_step']:.0f} "
            f"| {med['backward_step'] / med['plain_fb']:.3f} "
            f"| {gflops:.1f} ({100 * gflops / peak_matmul:.0f} %) | {trace_mb:.1f} |"
        )

    if args.memory_sizes:
        print_memory([int(size) for size in args.memory_sizes.split(",")], args.threads)


def print_memory(sizes: list[int], threads: int) -> None:
    print(
        "\nPeak memory of one run above the loaded model (MB; each in a fresh process):\n\n"
        "| T | plain fwd | capture | capture / plain | plain fwd+bwd | backward_step "
        "| backward_step / plain |\n|---|---|---|---|---|---|---|"
    )
    for T in sizes:
        mb = {case: peak_memory_mb(case, T, threads) for case in MEMORY_CASES}
        print(
            f"| {T} | {mb['plain']:.0f} | {mb['capture']:.0f} "
            f"| {mb['capture'] / mb['plain']:.2f} | {mb['plain_fb']:.0f} "
            f"| {mb['backward_step']:.0f} | {mb['backward_step'] / mb['plain_fb']:.2f} |"
        )


if __name__ == "__main__":
    main()
