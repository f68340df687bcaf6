"""How fast patch() is against TransformerLens: gpt_core's exact sweeps (resid, attn, mlp,
heads, heads_by_pos) vs TransformerLens 4.3's get_act_patch_resid_pre, _attn_out,
_mlp_out, _attn_head_out_all_pos and _attn_head_out_by_pos, on one GPT-2 small with random
weights loaded into both, timed side by side in one run, and checked to give the same
values.

    pip install -e ".[bench]"
    python benchmarks/bench_patching.py [--sizes 16,64,256] [--sweeps resid,heads]
        [--threads 2] [--tl-limit 360]

Offline throughout: the model is built with seeded random weights and saved to a
temporary folder (with GPT-2's tokenizer from resources/gpt2/), which both load. The
TransformerLens side is TransformerBridge.boot_transformers + enable_compatibility_mode
(LayerNorm folded, writing weights centred, but the unembedding left uncentred so that its
logits match ours, not just their differences), run under torch.no_grad().

Each side's time includes all it needs: TransformerLens's clean run_with_cache, and
patch(), which caches its own runs. The two sides run turn about, so that drift in the
machine's speed hits both alike; each figure is a median. One TransformerLens sweep costs a
full forward per cell: where its estimate (cells + 1 forwards) is over --tl-limit seconds,
it runs on a subset of the cells (every layer, some positions or heads) and its time is
extrapolated linearly in forwards; such rows say "extrapolated". Prints a Markdown table;
its load column is the machine's 1-minute load average when the row was done (with more
runnable threads than cores, every small op waits on a descheduled thread and the timings
mean little).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # TransformerLens's patching shows a bar per sweep

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_core import load_model
from gpt_core.analysis.patching import Metric, patch

RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "gpt2"
REPS = {16: 3, 64: 2, 256: 1}
ANSWER, DISTRACTOR = 11, 13  # "," and "."; any two ids do, the weights are random
N_CHANGED = 3  # positions where the corrupted prompt differs from the clean one
# sweep -> (TransformerLens function, its axes after the layer, in its order)
TL_SWEEPS = {
    "resid": ("get_act_patch_resid_pre", ("pos",)),
    "attn": ("get_act_patch_attn_out", ("pos",)),
    "mlp": ("get_act_patch_mlp_out", ("pos",)),
    "heads": ("get_act_patch_attn_head_out_all_pos", ("head",)),
    "heads_by_pos": ("get_act_patch_attn_head_out_by_pos", ("pos", "head")),
}


def save_random_gpt2(folder: str) -> None:
    """GPT-2 small with seeded random weights, and GPT-2's tokenizer, as a Hugging Face
    folder (config.json, model.safetensors, tokenizer files)."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).eval().save_pretrained(folder)
    tokenizer = GPT2Tokenizer(
        vocab_file=str(RESOURCES / "encoder.json"), merges_file=str(RESOURCES / "vocab.bpe")
    )
    # Saved beside the weights rather than handed to boot_transformers: TransformerLens
    # rebuilds a tokenizer from its name_or_path, which one built from files does not have.
    tokenizer.save_pretrained(folder)


def build_models(folder: str):
    """(gpt_core's model, TransformerLens's bridge), both from `folder`."""
    from transformer_lens.model_bridge import TransformerBridge

    ours, _ = load_model(folder)
    bridge = TransformerBridge.boot_transformers(folder, device="cpu")
    # Folding LayerNorm and centring the writing weights leave the logits as they are;
    # centring the unembedding shifts each position's logits by a constant, so it is off.
    bridge.enable_compatibility_mode(disable_warnings=True, center_unembed=False)
    return ours.eval(), bridge.eval()


def logit_gap(ours, bridge, ids: torch.Tensor) -> float:
    """max |gpt_core logits - TransformerLens logits| on ids [T]."""
    with torch.no_grad():
        return float((ours(ids[None]) - bridge(ids[None], return_type="logits")).abs().max())


def prompts(vocab_size: int, T: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(clean ids [T], corrupted ids [T], the positions where they differ), seeded by T."""
    g = torch.Generator().manual_seed(T)
    clean = torch.randint(0, vocab_size, (T,), generator=g)
    changed = sorted(torch.randperm(T - 1, generator=g)[:N_CHANGED].tolist())
    corrupted = clean.clone()
    shift = torch.randint(1, vocab_size, (len(changed),), generator=g)
    corrupted[changed] = (clean[changed] + shift) % vocab_size  # never the same token
    return clean, corrupted, changed


def tl_metric(logits: torch.Tensor) -> torch.Tensor:
    """TransformerLens's metric: logits [1, T, vocab] -> the logit difference at the end."""
    return logits[0, -1, ANSWER] - logits[0, -1, DISTRACTOR]


def ours_sweep(model, clean, corrupted, sweep: str):
    metric = Metric("logit_diff", ANSWER, DISTRACTOR, len(clean) - 1)

    def run() -> np.ndarray:
        values = patch(model, clean.tolist(), corrupted.tolist(), metric, sweeps=(sweep,))
        values = values.exact[sweep]
        # in TransformerLens's layout: [layer, pos, head] for heads by position
        return values.transpose(0, 2, 1) if sweep == "heads_by_pos" else values

    return run


def tl_sweep(bridge, clean, corrupted, sweep: str, cells=None):
    """TransformerLens's sweep from scratch: the clean cache, then one forward per cell;
    on `cells` (a DataFrame of layer and pos/head) only, when given (values flattened)."""
    from transformer_lens import patching

    function = getattr(patching, TL_SWEEPS[sweep][0])
    subset = {} if cells is None else {"index_axis_names": None, "index_df": cells}

    def run() -> np.ndarray:
        with torch.no_grad():
            _, clean_cache = bridge.run_with_cache(clean[None])
            values = function(bridge, corrupted[None], clean_cache, tl_metric, **subset)
        return values.numpy()

    return run


def tl_forward_seconds(bridge, ids: torch.Tensor, repeats: int = 3) -> float:
    """One patched TransformerLens forward (a hook that changes nothing), median."""
    hooks = [("blocks.0.hook_resid_pre", lambda act, hook: act)]
    with torch.no_grad():
        bridge.run_with_hooks(ids[None], fwd_hooks=hooks)
        return statistics.median(
            timed(lambda: bridge.run_with_hooks(ids[None], fwd_hooks=hooks)) for _ in range(repeats)
        )


def subset_cells(n_layers: int, n_second: int, keep: list[int], count: int, n_heads=None):
    """Every layer x `count` indices of the second axis: `keep` and others evenly spread
    (x every head, for heads by position)."""
    import pandas as pd

    extra = max(0, count - len(keep))
    spread = np.linspace(0, n_second - 1, extra).round().astype(int).tolist()
    chosen = sorted(set(keep) | set(spread))
    rows = [(layer, index) for layer in range(n_layers) for index in chosen]
    if n_heads is not None:
        rows = [(layer, index, head) for layer, index in rows for head in range(n_heads)]
    return pd.DataFrame(rows), chosen


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn) -> float:
    gc.collect()
    gc.disable()  # a collection in the middle of one run would be charged to it
    try:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed


def timed_result(fn):
    """(what fn returns, seconds)."""
    result = []
    seconds = timed(lambda: result.append(fn()))
    return result[0], seconds


def _interleaved(ours_fn, tl_fn, repeats: int):
    """Both sides run turn about: (ours' values, TL's values, ours' median s, TL's median s)."""
    times = ([], [])
    for _ in range(repeats):
        ours_values, ours_s = timed_result(ours_fn)
        tl_values, tl_s = timed_result(tl_fn)
        times[0].append(ours_s)
        times[1].append(tl_s)
    return ours_values, tl_values, statistics.median(times[0]), statistics.median(times[1])


def measure(ours, bridge, T: int, sweep: str, args) -> dict:
    """One row of the table: both sides' median seconds and the largest difference."""
    cfg = ours.cfg
    clean, corrupted, changed = prompts(cfg.vocab_size, T)
    axes = TL_SWEEPS[sweep][1]
    n_second = T if axes[0] == "pos" else cfg.n_heads
    per_index = cfg.n_heads if len(axes) == 2 else 1  # cells per index of the second axis
    cells = cfg.n_layers * n_second * per_index
    estimate = (cells + 1) * tl_forward_seconds(bridge, corrupted)
    row = {"T": T, "sweep": sweep, "note": "", "estimate": estimate}
    subset, chosen = None, list(range(n_second))
    if estimate > args.tl_limit:
        per_index_s = estimate / (cells + 1) * cfg.n_layers * per_index
        keep = changed + [T - 1] if axes[0] == "pos" else []
        count = max(1, int(args.tl_sample / per_index_s))
        heads = cfg.n_heads if len(axes) == 2 else None
        subset, chosen = subset_cells(cfg.n_layers, n_second, keep, count, heads)
    print(
        f"T = {T} {sweep}: TransformerLens estimated at {estimate:.0f} s"
        + (f", timing {len(subset)} of {cells} cells" if subset is not None else ""),
        file=sys.stderr,
    )
    ours_values, tl_values, ours_s, tl_s = _interleaved(
        ours_sweep(ours, clean, corrupted, sweep),
        tl_sweep(bridge, clean, corrupted, sweep, subset),
        args.reps or REPS.get(T, 1),
    )
    if subset is not None:
        row["note"] = f"extrapolated from {len(subset)} of {cells} cells"
        tl_s *= (cells + 1) / (len(subset) + 1)
        tl_values = tl_values.reshape(cfg.n_layers, len(chosen), *([per_index] * len(axes[1:])))
    row |= {
        "ours_s": ours_s,
        "tl_s": tl_s,
        "diff": float(np.abs(ours_values[:, chosen] - tl_values).max()),
        "rss": peak_rss_mb(),
        "load": os.getloadavg()[0],
    }
    print(
        f"T = {T} {sweep}: gpt_core {ours_s:.2f} s, TransformerLens {tl_s:.2f} s",
        file=sys.stderr,
    )
    return row


def warm_up(ours, bridge, sweeps, T: int = 8) -> None:
    """One small run of each side's every sweep, before anything is timed."""
    clean, corrupted, _ = prompts(ours.cfg.vocab_size, T)
    for sweep in sweeps:
        ours_sweep(ours, clean, corrupted, sweep)()
        tl_sweep(bridge, clean, corrupted, sweep)()


def print_table(rows: list[dict]) -> None:
    header = (
        "| T | sweep | gpt_core s | TransformerLens s | TL / gpt_core | max abs diff "
        "| peak RSS MB | load | note |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        print(
            f"| {r['T']} | {r['sweep']} | {r['ours_s']:.2f} | {r['tl_s']:.2f} "
            f"| {r['tl_s'] / r['ours_s']:.1f} | {r['diff']:.2e} | {r['rss']:.0f} | {r['load']:.1f} "
            f"| {r['note']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256")
    parser.add_argument("--sweeps", default=",".join(TL_SWEEPS), help="from " + ",".join(TL_SWEEPS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--tl-limit",
        type=float,
        default=360,
        help="seconds one TransformerLens sweep may take before it is timed on a subset",
    )
    parser.add_argument("--tl-sample", type=float, default=120, help="seconds to aim the subset at")
    parser.add_argument("--reps", type=int, help="rounds per row (default: 3, 2, 1 by T)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    sweeps = args.sweeps.split(",")
    from importlib.metadata import version

    with tempfile.TemporaryDirectory() as folder:
        save_random_gpt2(folder)
        ours, bridge = build_models(folder)
    print(
        f"gpt2-small, random weights, torch {torch.__version__}, transformers "
        f"{version('transformers')}, transformer-lens {version('transformer-lens')}, "
        f"{args.threads} threads, load average at start {os.getloadavg()[0]:.2f}"
    )
    print(f"peak RSS after building and loading both models: {peak_rss_mb():.0f} MB\n")
    for T in sizes:
        gap = logit_gap(ours, bridge, prompts(ours.cfg.vocab_size, T)[0])
        print(f"logits, max |gpt_core - TransformerLens| at T = {T}: {gap:.2e}")
    warm_up(ours, bridge, sweeps)
    rows = [measure(ours, bridge, T, sweep, args) for T in sizes for sweep in sweeps]
    print()
    print_table(rows)
    worst = max(r["diff"] for r in rows)
    print(
        f"\nlargest patched-metric difference: {worst:.2e}; peak RSS {peak_rss_mb():.0f} MB; "
        f"load average at end {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
