"""How much memory the long jobs hold on a long prompt, beyond the model: every patching
sweep, path patching, occlusion and the lens grid on GPT-2 small (random weights) at
T = 1,024, each in a process of its own.

    python benchmarks/bench_memory.py [--tokens 1024] [--seconds 60] [--jobs resid,lens]
        [--threads 2]

The figure is the process's peak resident memory (VmHWM, reset through
/proc/self/clear_refs once the model is built) less its resident memory at that moment:
everything the job allocated, its cached runs included. The lens grid reads a trace, which
the window already holds, so its figure is beyond the model and the trace.

A sweep at T = 1,024 takes hours on two cores, so each job runs for at most --seconds and
is then stopped through its own should_stop (the Cancel button's path). Every job holds its
cached runs from the start, and its batches are planned largest first (the earliest
starts, the longest suffixes) under one budget; the table says what share of the cells was
reached. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_core import capture, load_model
from gpt_core.analysis import sublayer_lens
from gpt_core.analysis.input_attribution import Explained, attribute
from gpt_core.analysis.patching import Metric, Receiver, patch
from gpt_core.errors import Cancelled

SWEEP_JOBS = ("resid", "attn", "mlp", "heads", "heads_by_pos", "pattern")
JOBS = (*SWEEP_JOBS, "path", "occlusion", "lens")
BUDGET_GIB = 1.5  # the bound the jobs are held to
MIB = 2**20


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> int:
    """Resets the resident high-water mark; returns the resident bytes now."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def run_one(job: str, n_tokens: int, seconds: float) -> dict:
    """Runs `job` in this process; returns its peak beyond the model and how far it got."""
    model, _ = load_model(None, "gpt2-small", seed=0)
    g = torch.Generator().manual_seed(n_tokens)
    clean = torch.randint(0, model.cfg.vocab_size, (n_tokens,), generator=g).tolist()
    corrupted = list(clean)
    corrupted[n_tokens // 2] = (clean[n_tokens // 2] + 1) % model.cfg.vocab_size
    done = {"cells": 0, "total": 0}

    def progress(cells: int, total: int) -> None:
        done.update(cells=cells, total=total)

    trace = capture(model, clean) if job == "lens" else None
    baseline = _reset_peak()
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    try:
        if job == "lens":
            sublayer_lens(model, trace, target=0)
            done.update(cells=1, total=1)
        elif job == "occlusion":
            explained = Explained(0, None, n_tokens - 1)
            attribute(
                model, clean, explained, ("occlusion",), progress=progress,
                should_stop=lambda: time.perf_counter() > deadline,
            )  # fmt: skip
        else:
            metric = Metric("logit_diff", 11, 13, n_tokens - 1)
            sweeps = () if job == "path" else (job,)
            receiver = Receiver(8, 0, "q") if job == "path" else None
            patch(
                model, clean, corrupted, metric, sweeps, receiver=receiver,
                progress=progress, should_stop=lambda: time.perf_counter() > deadline,
            )  # fmt: skip
    except Cancelled:
        pass
    peak = _status_kib("VmHWM") * 1024
    return {
        "job": job,
        "peak_mib": (peak - baseline) / MIB,
        "share": done["cells"] / max(done["total"], 1),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(run_one(args.one, args.tokens, args.seconds)))
        return
    print(f"GPT-2 small, random weights, T = {args.tokens}, at most {args.seconds:g} s a job\n")
    print("| job | peak beyond the model | within 1.5 GiB | cells reached | s |")
    print("| --- | --- | --- | --- | --- |")
    for job in args.jobs.split(","):
        command = [sys.executable, __file__, "--one", job, "--tokens", str(args.tokens)]
        command += ["--seconds", str(args.seconds), "--threads", str(args.threads)]
        found = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        within = "yes" if found["peak_mib"] <= BUDGET_GIB * 1024 else "**no**"
        print(
            f"| {job} | {found['peak_mib']:,.0f} MiB | {within} | "
            f"{found['share']:.1%} | {found['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
