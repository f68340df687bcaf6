"""The model work the Session itself hands to the worker: load a model, run a prompt (with
its unswitched baseline), one backward step, the next generated token."""

from __future__ import annotations

import time

import numpy as np
import torch

from explorer.session.worker import JobContext
from explorer.state.app_state import LoadedModel, RunKey, RunResult
from explorer.state.sampling import Draw, GenerationSettings
from gpt_core import (
    BackwardInfo,
    Cancelled,
    Trace,
    backward_step,
    capture,
    compare,
    count_parameters,
    get_tokenizer,
    head_summary,
    load_model,
)
from gpt_core.analysis import HEAD_TYPES, head_type_scores, pca_2d, prompt_head_scores
from gpt_core.model import GPTModel
from gpt_core.model.generation import sample_next_token
from gpt_core.model.tokenizer import vocabulary_note
from gpt_core.sae import site_edits
from gpt_core.weights import non_finite_parameters


def run_job(model: GPTModel, key: RunKey, baseline: Trace | None, ctx: JobContext) -> RunResult:
    """The baseline run (unless cached), the run with the switches, and their comparison."""
    start = time.perf_counter()
    ids = list(key.token_ids)
    if baseline is None:
        baseline = capture(model, ids, device=key.device, should_stop=ctx.should_stop)
    trace, comparison = baseline, None
    if switched(key):
        trace = capture(
            model,
            ids,
            key.interventions,
            device=key.device,
            track_token_ids=baseline["logits/topk_ids"][:, 0],
            should_stop=ctx.should_stop,
            edits=feature_edits(model, key, key.device),
        )
        comparison = compare(baseline, trace)
    seconds = time.perf_counter() - start
    head_stats = head_summary(trace) | prompt_head_scores(trace)  # on this prompt
    return RunResult(key, baseline, trace, comparison, head_stats, seconds)


def load_job(source, config, seed: int, device, ctx: JobContext) -> tuple[GPTModel, LoadedModel]:
    """The model on `device`, and what the app state keeps of it (serial still 0)."""
    model, cfg = load_model(source, config, seed=seed, progress=ctx.report, cancel=ctx.should_stop)
    model.to(device)
    label = f"random weights (seed {seed})" if source is None else str(source)
    counts, params = count_parameters(model), small_parameters(model)
    bad = non_finite_parameters(model)
    types, repeated, positions = {}, (), None
    if not bad:  # on the repeated sequence: what kind of head each one is, once per model
        if ctx.should_stop():
            raise Cancelled("loading cancelled")
        ctx.report(None, "scoring every head on the repeated sequence")
        scores = head_type_scores(model)
        types = {name: scores[name] for name in HEAD_TYPES}
        repeated = tuple(scores["ids"].tolist())
        positions = pca_2d(model.pos_emb.weight.detach().float().cpu().numpy())
    random = source is None
    return model, LoadedModel(
        cfg, label, random, counts, params, 0, bad, types, repeated, positions
    )


def backward_job(
    model: GPTModel, key: RunKey, target, sgd_lr, dropout_seed: int | None, ctx: JobContext
) -> Trace:
    """dropout_seed: training mode (dropout on) with masks seeded so; None: evaluation mode."""
    return backward_step(
        model,
        list(key.token_ids),
        target,
        key.interventions,
        sgd_lr,
        device=key.device,
        should_stop=ctx.should_stop,
        train=dropout_seed is not None,
        dropout_seed=dropout_seed or 0,
        edits=feature_edits(model, key, key.device),
    )


def feature_edits(model: GPTModel, key: RunKey, device) -> dict:
    """The edit of an SAE's site that the run's feature switches make ({} for none)."""
    if key.features is None:
        return {}
    sae = key.features.sae.to(device)
    return site_edits(sae, key.features.switches, model.cfg)


def next_token(trace: Trace, settings: GenerationSettings, n_generated: int) -> Draw:
    """The token to append: greedy, or drawn from next_token_distribution with the n-th
    seed of the settings. Only ids
    the tokenizer has a string for (a padded vocabulary's others would become "#50300" text
    in the prompt)."""
    logits = torch.from_numpy(np.array(trace["logits/last"][: get_tokenizer().size]))
    generator = torch.Generator().manual_seed(settings.seed + n_generated)
    s = settings
    token_id, distribution = sample_next_token(logits, s.temperature, s.top_k, s.top_p, generator)
    return Draw(token_id, settings, float(distribution.probs[token_id]))


def load_messages(loaded: LoadedModel) -> list[tuple[str, str]]:
    """(kind, text) of what to tell a person about the model just loaded."""
    messages = [("warning", non_finite_warning(loaded))]
    note = vocabulary_note(loaded.config.vocab_size)
    messages.append(("info", note and f"Note: {note}."))
    return [(kind, text) for kind, text in messages if text]


def non_finite_warning(loaded: LoadedModel) -> str | None:
    """What to tell a person whose weights hold NaN or Inf."""
    bad = loaded.non_finite
    if not bad:
        return None
    names = ", ".join(f"{name} ({count:,})" for name, count in list(bad.items())[:4])
    more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
    return (
        f"These weights hold {sum(bad.values()):,} non-finite values (NaN or Inf) in {names}"
        f"{more}. The model is loaded as it is: what those values reach is drawn in magenta, "
        "and generation is refused while the logits are not finite."
    )


def backward_summary(info: BackwardInfo) -> str:
    """The loss (in training mode beside the loss with dropout off), and the loss after the
    SGD step if one was taken."""
    text = f"loss {info.loss:.4f}"
    if info.eval_loss is not None:
        text += f" with dropout ({info.eval_loss:.4f} in evaluation mode)"
    if info.sgd_lr is not None:
        text += (
            f" → {info.loss_after_sgd:.4f} after one SGD step (lr {info.sgd_lr:g}); "
            "weights restored"
        )
    return text


def switched(key: RunKey) -> bool:
    """Whether any switch (head, block or feature) is on: the run is not the baseline."""
    return not key.interventions.is_empty or key.features is not None


def run_summary(n_tokens: int, result: RunResult, reused: bool, device: str) -> str:
    """What the status bar says of a run: its time, or that nothing was recomputed (the
    state held the unswitched run of these tokens, and no switch is on)."""
    if reused and not switched(result.key):
        return (
            f"{n_tokens:,} tokens · unchanged since the last run: its result is reused "
            "(nothing was recomputed)"
        )
    took = f"{n_tokens:,} tokens · {result.seconds * 1000:.0f} ms on {device}"
    return f"{took} (the unswitched run reused)" if reused else took


def small_parameters(model: GPTModel) -> dict[str, np.ndarray]:
    """1-D parameters (LayerNorm scale and shift) as numpy, for the views."""
    return {
        name: p.detach().float().cpu().numpy().copy()
        for name, p in model.named_parameters()
        if p.dim() == 1
    }
