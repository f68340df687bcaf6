"""What an SAE's features of a prompt cost, as a ratio to a plain forward of the same model
and prompt, timed side by side in one run.

    python benchmarks/bench_features.py [--tokens 128] [--threads 2] [--reps 7]

GPT-2 small with seeded random weights and a 24,576-feature JumpReLU SAE at
blocks.8.hook_resid_pre, random too, its thresholds set so that about 50 features fire per
token (as trained SAEs of that site do; a random SAE with no threshold fires half its
features and its sparse decode would be no cheaper than a dense one). Offline.

Rows: `model(ids)` under inference mode; features(..., losses=False): the same forward with
the SAE read at its site (encode, top-k, L0, reconstruction error, the sparse activations);
features(...) with the losses: the batched run clean / spliced / zeroed (3 rows). Medians of
--reps rounds, the rounds interleaving every row.

Then the corpus scan: scan_corpus() over --scan-tokens tokens of random text in windows of 64
(no cache), its tokens per second against a plain batched forward's over the same windows;
the issue's bar is (12 / (L + 1)) × 0.7 of the forward's rate, L = 8.
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

import tempfile

from gpt_core import get_tokenizer, load_model
from gpt_core.probe.hook_points import hooked
from gpt_core.sae import SparseAutoencoder, features, scan_corpus, site_of
from gpt_core.sae.config import SAEConfig

HOOK = "blocks.8.hook_resid_pre"
D_SAE = 24_576
ACTIVE = 50  # features per token the thresholds aim at


def random_sae(model, ids) -> SparseAutoencoder:
    emb = model.cfg.emb_dim
    g = torch.Generator().manual_seed(0)
    cfg = SAEConfig("jumprelu", emb, D_SAE, HOOK, True, "none", model_name="gpt2")
    w_dec = torch.randn(D_SAE, emb, generator=g)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    sae = SparseAutoencoder(cfg, w_dec.T.contiguous(), torch.zeros(D_SAE), w_dec,
                            torch.zeros(emb), torch.zeros(D_SAE))  # fmt: skip
    site = site_of(HOOK, model.cfg)
    with torch.inference_mode(), hooked(model, keep=[site.key]) as kept:
        model(torch.tensor([ids]))
    pre = sae.pre_activations(kept[site.key][0])  # [T, d_sae]
    quantile = 1 - ACTIVE / D_SAE
    threshold = pre.flatten().kthvalue(int(quantile * pre.numel())).values
    return SparseAutoencoder(cfg, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec,
                             torch.full((D_SAE,), float(threshold)))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--scan-tokens", type=int, default=8192)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(None, "gpt2-small", seed=0)
    model.eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.cfg.vocab_size, (args.tokens,), generator=g).tolist()
    sae = random_sae(model, ids)

    def forward():
        with torch.inference_mode():
            model(torch.tensor([ids]))

    rows = {
        "forward": forward,
        "features (no losses)": lambda: features(model, ids, sae, losses=False),
        "features + splice losses": lambda: features(model, ids, sae),
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for work in rows.values():  # warm-up
        work()
    for _ in range(args.reps):
        for name, work in rows.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    run = features(model, ids, sae, losses=False)
    base = statistics.median(times["forward"])
    print(f"GPT-2 small (random), T = {args.tokens}, {args.threads} threads, SAE {D_SAE:,} "
          f"features at {HOOK}, mean L0 {run.readout.l0.mean():.0f}")  # fmt: skip
    print(f"{'row':28s} {'median ms':>10s} {'× forward':>10s}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:28s} {median * 1e3:10.1f} {median / base:10.2f}")
    bench_scan(model, sae, args.scan_tokens)


def bench_scan(model, sae, n_tokens: int, window: int = 64) -> None:
    g = torch.Generator().manual_seed(2)
    text = get_tokenizer().decode(torch.randint(0, 50_000, (n_tokens,), generator=g).tolist())
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        result = scan_corpus(model, sae, corpus, window=window)
    windows = torch.as_tensor(result.windows)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in windows.split(max(1, 2048 // window)):
            model(batch)
    forward_rate = windows.numel() / (time.perf_counter() - start)
    bar = 12 / (8 + 1) * 0.7
    print(f"scan of {result.tokens:,} tokens in windows of {window}: "
          f"{result.tokens_per_second:,.0f} tokens/s; plain forward {forward_rate:,.0f} tokens/s; "
          f"ratio {result.tokens_per_second / forward_rate:.2f} (bar {bar:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
