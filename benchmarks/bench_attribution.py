"""What "why this token" costs: each input-attribution method, the lens at every sub-layer
and the head-type scores, as ratios to a plain forward (and to a forward + backward for the
gradient methods) of the same model and prompt, timed side by side in one run.

    python benchmarks/bench_attribution.py [--sizes 32,128] [--threads 2] [--reps 3]

GPT-2 small with seeded random weights, offline. Each method explains the last position's
top-1 logit, so every run covers the whole prompt (an earlier position makes every method
but the rollout cheaper: the runs stop at that position). The plain forward is
`model(ids)` under inference mode; the forward + backward takes the gradient of one logit
with respect to the token embeddings. Medians of --reps rounds, the rounds interleaving
every row, so drift in the machine's speed hits all alike. The head scores run one forward
on the 101-token probe, so their ratio is to a plain forward of 101 tokens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_core import capture, load_model
from gpt_core.analysis import REPEAT_LENGTH, head_type_scores, sublayer_lens
from gpt_core.analysis.input_attribution import DEFAULT_STEPS, Explained, attribute

VISIBLE = 16  # columns of the lens grid the window reads first


def forward(model, ids):
    with torch.inference_mode():
        model(torch.tensor([ids]))


def forward_backward(model, ids):
    embeddings = model.tok_emb.weight[torch.tensor(ids)].detach()[None].requires_grad_()
    handle = model.tok_emb.register_forward_hook(lambda m, a, out: embeddings)
    try:
        logit = model(torch.tensor([ids]))[0, -1, 0]
        torch.autograd.grad(logit, embeddings)
    finally:
        handle.remove()


def rows_for(model, ids: list[int]) -> dict[str, tuple[str, callable]]:
    """name -> (what its ratio is to, the work)."""
    with torch.inference_mode():
        target = int(model(torch.tensor([ids]))[0, -1].argmax())
    explained = Explained(target, None, len(ids) - 1)
    trace = capture(model, ids)
    probe = list(range(1, 2 * REPEAT_LENGTH + 2))

    def method(name: str, **options):
        return lambda: attribute(model, ids, explained, (name,), **options)

    return {
        "forward": ("forward", lambda: forward(model, ids)),
        "forward + backward": ("forward", lambda: forward_backward(model, ids)),
        "gradient norm": ("forward + backward", method("grad_norm")),
        "input × gradient": ("forward + backward", method("input_x_grad")),
        f"integrated gradients, {DEFAULT_STEPS['gauss']} Gauss–Legendre nodes (default)": (
            "forward + backward",
            method("integrated_gradients"),
        ),
        "integrated gradients, 32 midpoint steps": (
            "forward + backward",
            method("integrated_gradients", integration="midpoint", steps=32),
        ),
        "occlusion": ("forward", method("occlusion")),
        "attention rollout": ("forward", method("rollout")),
        f"lens grid, first {VISIBLE} columns": (
            "forward",
            lambda: sublayer_lens(model, trace, target, range(min(VISIBLE, len(ids)))),
        ),
        "lens grid, every column": ("forward", lambda: sublayer_lens(model, trace, target)),
        "forward, 101 tokens": ("forward", lambda: forward(model, probe)),
        "head-type scores": ("forward, 101 tokens", lambda: head_type_scores(model)),
    }


def completeness_gaps(model, ids: list[int]) -> tuple[float, float]:
    """Integrated gradients' completeness gap at the default (Gauss–Legendre) and with 32
    midpoint steps, for the benchmark's explained logit."""
    with torch.inference_mode():
        target = int(model(torch.tensor([ids]))[0, -1].argmax())
    explained, methods = Explained(target, None, len(ids) - 1), ("integrated_gradients",)
    gauss = attribute(model, ids, explained, methods).completeness_gap
    midpoint = attribute(model, ids, explained, methods, steps=32, integration="midpoint")
    return gauss, midpoint.completeness_gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, cfg = load_model(None, "gpt2-small", seed=0)
    print(f"GPT-2 small, random weights, {args.threads} threads, medians of {args.reps}\n")
    print("| T | what | median s | ratio | to |\n| --- | --- | --- | --- | --- |")
    gaps = []
    for size in (int(s) for s in args.sizes.split(",")):
        ids = [(7 * i + 11) % 50000 for i in range(size)]
        rows = rows_for(model, ids)
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _, work in rows.values():
            work()  # warm-up
        for _ in range(args.reps):
            for name, (_, work) in rows.items():
                start = time.perf_counter()
                work()
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        for name, (base, _) in rows.items():
            ratio = median[name] / median[base]
            print(f"| {size} | {name} | {median[name]:.3f} | {ratio:.2f}× | {base} |")
        gaps.append((size, completeness_gaps(model, ids)))
    for size, (gauss, midpoint) in gaps:
        print(
            f"\nT = {size}: completeness gap {gauss:.2e} with {DEFAULT_STEPS['gauss']} "
            f"Gauss–Legendre nodes, {midpoint:.2e} with 32 midpoint steps"
        )
    print(f"\n1-minute load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
