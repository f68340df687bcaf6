"""A patching experiment: `patch()` runs it, `default_tokens` and `metric_from_text` set it up.

Two prompts of the same length, clean and corrupted, and a metric read at one position.
Each cell of a sweep is one run with one activation taken from the other prompt's run;
the result is the metric it gives. `patch()` computes the exact sweeps fast (from cached
runs, batched, unembedding only where the metric reads), path patching into one receiver,
attribution patching (the first-order estimate of every cell from one backward pass) and
the direct logit attribution of the clean run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ...errors import Cancelled, PromptError
from ...model import GPTModel, check_in_vocabulary, check_token_ids, get_tokenizer
from ...util.devices import resolve_device
from ..prefix_reuse import PrefixCache
from ._attribution_patching import attribution_estimate
from ._exact import exact_layer, path_estimate, path_layer
from ._runs import record
from .logit_attribution import direct_logit_attribution
from .result import DIRECTIONS, Metric, PatchResult, Receiver
from .sweeps import SWEEPS

# exact: one patched run per cell; attribution: attribution patching's first-order
# estimates; both: the two side by side
PATCHING_METHODS = ("exact", "attribution", "both")
Progress = Callable[[int, int], None]  # cells done, cells in all
Partial = Callable[[str, np.ndarray], None]  # sweep, its array so far (NaN where not yet run)


@torch.no_grad()
def patch(
    model: GPTModel,
    clean_ids: Sequence[int],
    corrupted_ids: Sequence[int],
    metric: Metric,
    sweeps: Sequence[str] = ("resid", "heads"),
    *,
    method: str = "exact",
    direction: str = "denoise",
    receiver: Receiver | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    on_partial: Partial | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PatchResult:
    """Patch every cell of `sweeps` (keys of SWEEPS) from one run into the other.

    method: "exact" (one patched run per cell), "attribution" (first-order estimates) or
        "both". direction: "denoise" patches clean activations into the corrupted run,
        "noise" the other way. receiver: also path-patch every head into it.
    progress(done, total) follows the exact cells; on_partial(sweep, array) gets each
    sweep as its blocks arrive; should_stop() is polled between batches (Cancelled).
    """
    _check_options(sweeps, method, direction, metric)
    dev = resolve_device(device)
    if next(model.parameters()).device != dev:
        model.to(dev)
    clean_full, corrupted_full = _checked_ids(
        model, clean_ids, corrupted_ids, metric, receiver, dev
    )
    # Positions after the metric's cannot change it (attention is causal): cut them off.
    clean, corrupted = clean_full[: metric.position + 1], corrupted_full[: metric.position + 1]
    was_training = model.training
    model.eval()
    try:
        base_name, source_name = (
            ("corrupted", "clean") if direction == "denoise" else ("clean", "corrupted")
        )
        # The [H, T, T] attention weights of every block are kept only where attribution
        # patching estimates the pattern sweep (exact patching makes the source's per block).
        weights = "pattern" in sweeps and method != "exact"
        ids = {"clean": clean, "corrupted": corrupted}
        runs = {
            name: record(model, ids[name], metric, keep_weights=weights and name == source_name)
            for name in ("clean", "corrupted")
        }
        base, source = runs[base_name], runs[source_name]
        prefix = PrefixCache(model, base.block_input)  # the base run's keys and values, once
        exact, path = {}, None
        tracker = _Tracker(model, sweeps, method, receiver, metric, progress, should_stop)
        with torch.inference_mode():
            if method != "attribution":
                for name in sweeps:
                    exact[name] = _exact_sweep(
                        model, name, (base, source, prefix), metric, tracker, on_partial
                    )
            if receiver is not None:
                path = _path_sweep(model, receiver, (base, source, prefix), metric, tracker)
        estimates = {}
        if method != "exact":
            with torch.enable_grad():
                graded = record(
                    model, clean if base_name == "clean" else corrupted, metric, True, weights
                )
            estimates = {
                name: _numpy(attribution_estimate(SWEEPS[name], graded, source)) for name in sweeps
            }
            if receiver is not None:
                estimates["path"] = _path_estimates(model, receiver, (base, source, prefix), metric)
        logit_parts = direct_logit_attribution(model, runs["clean"], metric)
    finally:
        model.train(was_training)
    return PatchResult(
        clean_ids=clean_full.cpu().numpy(),
        corrupted_ids=corrupted_full.cpu().numpy(),
        metric=metric,
        direction=direction,
        clean_value=runs["clean"].value,
        corrupted_value=runs["corrupted"].value,
        exact=exact,
        attribution=estimates,
        path=path,
        receiver=receiver,
        logit_attribution=logit_parts,
    )


@torch.no_grad()
def default_tokens(
    model: GPTModel, clean_ids: Sequence[int], corrupted_ids: Sequence[int], position: int
) -> tuple[int, int]:
    """(answer, distractor): the clean run's most likely next token at `position`, and the
    corrupted run's (its second if the two agree); only tokens the tokenizer has a string
    for are picked."""
    device = next(model.parameters()).device
    _checked_ids(model, clean_ids, corrupted_ids, Metric("prob", 0, None, position), None, device)
    was_training = model.training
    model.eval()
    try:
        logits = [model(torch.as_tensor([list(ids)], device=device))[0, position] for ids in
                  (clean_ids, corrupted_ids)]  # fmt: skip
    finally:
        model.train(was_training)
    if not all(bool(torch.isfinite(row).all()) for row in logits):
        raise PatchError(
            "the logits are not finite (NaN or Inf: the weights hold non-finite values), so "
            "no default answer or distractor can be picked; name both"
        )
    nameable = get_tokenizer().size  # ids past it (a padded vocabulary) have no text
    tops = [torch.topk(row[:nameable], 2).indices for row in logits]
    answer = int(tops[0][0])
    distractor = int(tops[1][0]) if int(tops[1][0]) != answer else int(tops[1][1])
    return answer, distractor


def metric_from_text(
    model: GPTModel,
    clean_text: str,
    corrupted_text: str,
    kind: str = "logit_diff",
    answer: str = "",
    distractor: str = "",
    position: int | None = None,
    device: str | torch.device = "auto",
) -> tuple[list[int], list[int], Metric]:
    """The two prompts' ids and the metric, as a person types them: answer and distractor
    are text of one token each, or empty for default_tokens' choice; position None is the
    last. The model is moved to `device`."""
    tokenizer = get_tokenizer()
    clean, corrupted = tokenizer.encode(clean_text), tokenizer.encode(corrupted_text)
    if not clean or not corrupted:
        raise PatchError("a prompt is empty: type a clean and a corrupted prompt first")
    position = len(clean) - 1 if position is None else position
    model.to(resolve_device(device))
    answer_id = tokenizer.single_id(answer, "the answer") if answer else None
    distractor_id = tokenizer.single_id(distractor, "the distractor") if distractor else None
    if answer_id is None or distractor_id is None:  # defaults only where asked for
        defaults = default_tokens(model, clean, corrupted, position)
        answer_id = defaults[0] if answer_id is None else answer_id
        distractor_id = defaults[1] if distractor_id is None else distractor_id
    return clean, corrupted, Metric(kind, answer_id, distractor_id, position)


class PatchError(PromptError):
    """Prompts, tokens or options a patching experiment cannot use."""


def _check_options(sweeps, method: str, direction: str, metric: Metric) -> None:
    unknown = [name for name in sweeps if name not in SWEEPS]
    if unknown:
        raise PatchError(f"unknown sweep {unknown[0]!r}; choose from {', '.join(SWEEPS)}")
    if method not in PATCHING_METHODS:
        raise PatchError(f"method must be one of {', '.join(PATCHING_METHODS)}, got {method!r}")
    if direction not in DIRECTIONS:
        raise PatchError(f"direction must be denoise or noise, got {direction!r}")
    if not isinstance(metric, Metric):
        raise PatchError("metric must be a Metric")


def _checked_ids(model: GPTModel, clean_ids, corrupted_ids, metric, receiver, device):
    clean = torch.as_tensor(np.asarray(clean_ids, dtype=np.int64), device=device)
    corrupted = torch.as_tensor(np.asarray(corrupted_ids, dtype=np.int64), device=device)
    if clean.shape != corrupted.shape:
        strips = ["|".join(get_tokenizer().displays(ids)) for ids in (clean_ids, corrupted_ids)]
        raise PatchError(
            f"clean has {len(clean)} tokens, corrupted {len(corrupted)}: patching compares "
            f"position by position (clean: {strips[0]}; corrupted: {strips[1]})"
        )
    check_token_ids(clean[None], model.cfg)
    check_token_ids(corrupted[None], model.cfg)
    if not 0 <= metric.position < len(clean):
        raise PatchError(
            f"the metric position {metric.position} is outside the prompt (0..{len(clean) - 1})"
        )
    check_in_vocabulary((metric.answer, metric.distractor), model.cfg)
    if receiver is not None and receiver.layer is not None:
        cfg = model.cfg
        if not (0 <= receiver.layer < cfg.n_layers and 0 <= receiver.head < cfg.n_heads):
            raise PatchError(
                f"receiver {receiver.describe()} does not exist: layers 0..{cfg.n_layers - 1}, "
                f"heads 0..{cfg.n_heads - 1}"
            )
        if receiver.layer == 0:
            raise PatchError("a receiver in block 0 has no earlier heads to send to it")
    return clean, corrupted


class _Tracker:
    """Counts the exact cells done, reports progress and checks for a stop request."""

    def __init__(self, model, sweeps, method, receiver, metric, progress, should_stop):
        cfg = model.cfg
        n_tokens = metric.position + 1
        cells = [
            int(np.prod(SWEEPS[name].shape(cfg.n_layers, cfg.n_heads, n_tokens)))
            for name in sweeps
            if method != "attribution"
        ]
        if receiver is not None:
            senders = cfg.n_layers if receiver.layer is None else receiver.layer
            cells.append(senders * cfg.n_heads)
        self.total, self.done = sum(cells), 0
        self.progress, self.should_stop = progress, should_stop

    def step(self, cells: int) -> None:
        self.done += cells
        if self.progress is not None:
            self.progress(self.done, self.total)
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("patching cancelled")


def _exact_sweep(model, name, runs, metric, tracker: _Tracker, on_partial):
    """runs: (base, source, the base run's PrefixCache)."""
    base, source, prefix = runs
    cfg = model.cfg
    sweep = SWEEPS[name]
    values = np.full(
        sweep.shape(cfg.n_layers, cfg.n_heads, metric.position + 1), np.nan, np.float32
    )
    for layer in range(cfg.n_layers):
        values[layer] = _numpy(
            exact_layer(model, sweep, layer, base, source, metric, tracker.step, prefix)
        )
        if on_partial is not None:
            on_partial(name, values.copy())
    return values


def _path_sweep(model, receiver: Receiver, runs, metric, tracker: _Tracker):
    base, source, prefix = runs
    cfg = model.cfg
    values = np.full((cfg.n_layers, cfg.n_heads), np.nan, dtype=np.float32)
    senders = cfg.n_layers if receiver.layer is None else receiver.layer
    for layer in range(senders):
        values[layer] = _numpy(
            path_layer(model, layer, receiver, base, source, metric, tracker.step, prefix)
        )
    return values


def _path_estimates(model, receiver: Receiver, runs, metric) -> np.ndarray:
    base, source, prefix = runs
    cfg = model.cfg
    values = np.full((cfg.n_layers, cfg.n_heads), np.nan, dtype=np.float32)
    senders = cfg.n_layers if receiver.layer is None else receiver.layer
    for layer in range(senders):
        values[layer] = _numpy(path_estimate(model, layer, receiver, base, source, metric, prefix))
    return values


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()
