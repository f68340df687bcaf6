"""Which input tokens made this prediction? One score per input token for the quantity
f = logit[target] at a position's next-token prediction (minus logit[foil] when a foil is
given: contrastive attribution), by five methods:

- grad_norm: ‖∂f/∂e_t‖ for each token embedding e_t;
- input_x_grad: e_t · ∂f/∂e_t;
- integrated_gradients: (e_t − b_t) · ∫₀¹ ∂f/∂e_t(b + α(e − b)) dα, by Gauss–Legendre
  quadrature (N nodes integrate polynomials of degree 2N − 1 exactly) or the midpoint rule,
  in batches, positions fixed; its completeness gap |Σ scores − (f(e) − f(b))| says whether
  the steps were enough;
- occlusion: f(e) − f(e with e_t replaced by the baseline); the run that occludes token t
  runs positions t … only, over the keys and values of the run that occludes nothing
  (prefix_reuse), unless a head is switched off by its mean over the positions;
- rollout (Abnar & Zuidema 2020): per block Â = ½ (mean over the heads that are on of the
  attention weights) + ½ I, rows renormalised; Â_{L−1} ⋯ Â_0, the position's row.

The switches (heads off, blocks skipped) act as in every run, and so do `edits` of a stage
(an SAE's feature switches); a skipped block contributes I to the rollout. Attention is
causal, so the runs stop at the explained position and unembed it alone; tokens after it
score exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import Cancelled
from ..model import GPTModel, check_in_vocabulary, check_token_ids
from ..probe import Interventions, capture, stage_key
from ..probe.hook_points import Edit, hooked
from .prefix_reuse import PrefixCache, Suffixes, batches, finish_suffixes

INPUT_ATTRIBUTION_METHODS = (
    "grad_norm",
    "input_x_grad",
    "integrated_gradients",
    "occlusion",
    "rollout",
)
MAX_BATCH = 16  # runs per forward
# How integrated gradients integrates along the path: Gauss–Legendre nodes and weights
# (Captum's default), or the midpoint rule.
INTEGRATION_RULES = ("gauss", "midpoint")
# The steps each rule takes unless told: the fewest Gauss–Legendre nodes whose completeness
# gap on the benchmark prompts (benchmarks/bench_attribution.py) is no larger than 32
# midpoint steps' (the README gives both).
DEFAULT_STEPS = {"gauss": 6, "midpoint": 32}
# Integrated gradients' most steps: 1,024 runs take minutes on a CPU for gpt2-small, and
# the completeness gap of a few dozen steps is usually already small.
MAX_STEPS = 1024
# The attention weights of one batch, forward and backward, stay under this many bytes: a
# long prompt runs fewer variants at a time instead of running out of memory.
ATTENTION_BUDGET_BYTES = 1 << 30


@dataclass(frozen=True)
class Explained:
    """The quantity the scores explain."""

    target: int  # token id whose logit is explained
    foil: int | None  # token id whose logit is subtracted (contrastive), or None
    position: int  # the position whose next-token prediction is read


@dataclass(frozen=True)
class InputAttribution:
    scores: dict[str, np.ndarray]  # method -> [T] one score per input token
    value: float  # the explained quantity on the input
    baseline_value: float | None  # ... with every token embedding at the baseline (IG)
    completeness_gap: float | None  # |Σ IG scores − (value − baseline_value)|


def attribute(
    model: GPTModel,
    ids: Sequence[int],
    explained: Explained,
    methods: Sequence[str] = INPUT_ATTRIBUTION_METHODS,
    *,
    steps: int | None = None,
    integration: str = "gauss",
    baseline_token: int | None = None,
    interventions: Interventions | None = None,
    edits: Mapping[str, Edit] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> InputAttribution:
    """Scores by each of `methods`; the baseline is the zero vector, or the embedding of
    `baseline_token` at every position. Integrated gradients takes `steps` points of the
    `integration` rule (default: DEFAULT_STEPS of the rule). `should_stop` is asked between
    batches; when it says yes, Cancelled is raised. `edits` change stages in every run, as
    in hooked() (the run explained is the run they make). `progress(done, total)` counts the runs
    through the model (the rollout's capture counts as one)."""
    steps = DEFAULT_STEPS.get(integration, 1) if steps is None else steps
    _check_request(ids, explained, methods, steps, integration)
    check_token_ids(torch.as_tensor([list(ids)]), model.cfg)
    check_in_vocabulary((explained.target, explained.foil, baseline_token), model.cfg)
    interventions = interventions or Interventions()
    device = next(model.parameters()).device
    read = explained.position + 1  # the tokens that can reach the position
    ids_t = torch.as_tensor(list(ids)[:read], device=device)  # [T']
    embeddings = model.tok_emb.weight[ids_t].detach()  # [T', E]
    baseline = torch.zeros_like(embeddings)
    if baseline_token is not None:
        baseline = model.tok_emb.weight[baseline_token].detach().expand_as(embeddings)
    runs = {"integrated_gradients": steps + 1, "occlusion": read, "rollout": 1}
    total = 1 + sum(runs.get(m, 0) for m in set(methods))
    switches = (interventions, dict(edits or {}))
    quantity = _Quantity(model, ids_t, explained, switches, should_stop, progress, total)
    scores, baseline_value, gap = {}, None, None
    if {"grad_norm", "input_x_grad"} & set(methods):
        with torch.enable_grad():
            value, grad = quantity.with_grad(embeddings[None])  # [1], [1, T', E]
    else:
        value = quantity(embeddings[None])  # [1]: no gradient asked for at the input
    if "grad_norm" in methods:
        scores["grad_norm"] = _numpy(torch.linalg.vector_norm(grad[0], dim=-1))
    if "input_x_grad" in methods:
        scores["input_x_grad"] = _numpy((embeddings * grad[0]).sum(-1))
    if "integrated_gradients" in methods:
        ig = _integrated_gradients(quantity, embeddings, baseline, quadrature(integration, steps))
        baseline_value = float(quantity(baseline[None])[0])
        gap = abs(float(ig.sum()) - (float(value[0]) - baseline_value))
        scores["integrated_gradients"] = _numpy(ig)
    if "occlusion" in methods:
        scores["occlusion"] = _numpy(_occlusion(quantity, embeddings, baseline, value[0]))
    scores = {name: np.pad(values, (0, len(ids) - read)) for name, values in scores.items()}
    if "rollout" in methods:
        scores["rollout"] = rollout(model, ids, explained.position, interventions, edits)
        progress(total, total)
    return InputAttribution(scores, float(value[0]), baseline_value, gap)


def check_steps(steps: int) -> None:
    """ValueError for a number of integrated-gradients steps that cannot or should not run."""
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(
            f"integrated gradients takes 1 to {MAX_STEPS:,} steps, got {steps:,} (the "
            "completeness gap says whether the steps were enough)"
        )


def quadrature(integration: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [0, 1] (float64, [steps] each) of the rule `integration`."""
    if integration == "gauss":
        nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [-1, 1]
        return (nodes + 1) / 2, weights / 2
    return (np.arange(steps) + 0.5) / steps, np.full(steps, 1 / steps)


def _check_request(ids: Sequence[int], explained: Explained, methods, steps, integration):
    """ValueError, with what to change, for a request that cannot give useful scores."""
    choices = ", ".join(INPUT_ATTRIBUTION_METHODS)
    unknown = [m for m in methods if m not in INPUT_ATTRIBUTION_METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {choices}")
    if not methods:
        raise ValueError(f"no method chosen; choose from {choices}")
    check_steps(steps)
    if integration not in INTEGRATION_RULES:
        raise ValueError(
            f"integration must be one of {', '.join(INTEGRATION_RULES)}, got {integration!r}"
        )
    if explained.foil == explained.target:
        raise ValueError("the foil is the target: their difference is always 0; choose another")
    if not 0 <= explained.position < len(ids):
        raise ValueError(f"position {explained.position} is outside the prompt")


class _Quantity:
    """f of a batch of token embeddings [N, T', E] -> [N], through the model with its
    position embeddings and the switches; T' ends at the explained position."""

    def __init__(self, model, ids, explained, switches, should_stop, progress, total):
        """switches: (the interventions, stage edits every run makes after its own)."""
        self.model, self.ids, self.explained = model, ids, explained
        self.interventions, self.edits = switches
        self.should_stop = should_stop
        self.progress, self.total, self.done = progress, total, 0
        cfg, n_tokens = model.cfg, len(ids)
        per_run = 3 * cfg.n_layers * cfg.n_heads * n_tokens * n_tokens * 4  # weights, grads
        self.batch = max(1, min(MAX_BATCH, ATTENTION_BUDGET_BYTES // per_run))

    def __call__(self, token_embeddings: Tensor) -> Tensor:
        with torch.no_grad():
            return self._forward(token_embeddings)

    def with_grad(self, token_embeddings: Tensor) -> tuple[Tensor, Tensor]:
        inputs = token_embeddings.detach().requires_grad_()
        value = self._forward(inputs)
        (grad,) = torch.autograd.grad(value.sum(), inputs)
        return value.detach(), grad

    def _forward(self, token_embeddings: Tensor) -> Tensor:
        if self.should_stop():
            raise Cancelled("the attribution was stopped")
        model = self.model
        batch = token_embeddings.shape[0]
        edits = {
            stage_key("embeddings/token"): lambda out: token_embeddings,
            # only the last position is unembedded: [N, T', E] -> [N, 1, E]
            stage_key("out", model.cfg.n_layers - 1): lambda out: out[:, -1:],
        }
        for key, edit in self.edits.items():  # a stage edited twice: ours, then this one
            edits[key] = _then(edits[key], edit) if key in edits else edit
        with hooked(model, self.interventions, edits=edits):
            logits = model(self.ids[None].expand(batch, -1))[:, -1]  # [N, V]
        self._count(batch)
        return self._read(logits)

    def _read(self, logits: Tensor) -> Tensor:
        """f from the logits at the explained position: [N, V] -> [N]."""
        value = logits[:, self.explained.target].float()
        if self.explained.foil is not None:
            value = value - logits[:, self.explained.foil].float()
        return value

    def _count(self, runs: int) -> None:
        self.done += runs
        self.progress(self.done, self.total)

    @property
    def reuses_prefix(self) -> bool:
        """Whether occlusion may start each run at its hidden token: a change at one
        position must leave every earlier one as it was (not so when a head is replaced by
        its mean over all the positions), and the runs must need no stage edits (the
        prefix-reusing runs call no stage's hooks)."""
        causal = self.interventions.mode != "mean" or not self.interventions.ablate_heads
        return causal and not self.edits

    @torch.no_grad()
    def occluded(self, x: Tensor, baseline: Tensor) -> Tensor:
        """f with each token's embedding in turn at the baseline's: [T']. The run hiding
        token t starts at t, over the unhidden run's keys and values."""
        model, n_tokens = self.model, len(self.ids)
        keys = [stage_key("embeddings/sum")]
        keys += [stage_key("out", layer) for layer in range(model.cfg.n_layers - 1)]
        last = stage_key("out", model.cfg.n_layers - 1)
        edits = {stage_key("embeddings/token"): lambda out: x[None], last: lambda out: out[:, -1:]}
        with hooked(model, self.interventions, edits=edits, keep=keys) as kept:
            model(self.ids[None])  # the run that hides nothing, unembedded at the end only
        prefix = PrefixCache(model, lambda layer: kept[keys[layer]][0])
        starts = torch.arange(n_tokens, device=x.device)  # run t hides token t
        values = x.new_zeros(n_tokens)
        with hooked(model, self.interventions):  # heads switched off in every batch
            for cells in batches(starts, model, n_tokens):
                if self.should_stop():
                    raise Cancelled("the attribution was stopped")
                rows = Suffixes.of(starts[cells], n_tokens)
                tokens = x[rows.position]  # [M, E]
                hidden = rows.position == starts[cells][rows.run]  # each run's first row
                tokens = torch.where(hidden[:, None], baseline[rows.position], tokens)
                stream = model.drop_emb(tokens + model.pos_emb(rows.position))  # [M, E]
                skip = self.interventions.skip_layers
                values[cells] = finish_suffixes(
                    model, prefix, rows, stream, 0, "pre", self._read, skip
                )
                self._count(len(cells))
        return values


def _integrated_gradients(quantity: _Quantity, x: Tensor, baseline: Tensor, rule) -> Tensor:
    """Σ_k w_k ∂f/∂e(b + α_k (x − b)) times (x − b), summed over the features: [T].
    rule: (nodes α_k, weights w_k) on [0, 1]."""
    total = torch.zeros_like(x)
    alphas, weights = (torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in rule)
    with torch.enable_grad():
        for chunk, chunk_weights in zip(
            alphas.split(quantity.batch), weights.split(quantity.batch), strict=True
        ):
            points = baseline + chunk[:, None, None] * (x - baseline)  # [n, T, E]
            grads = quantity.with_grad(points)[1]  # [n, T, E]
            total += torch.einsum("n,nte->te", chunk_weights, grads)
    return ((x - baseline) * total).sum(-1)


def _occlusion(quantity: _Quantity, x: Tensor, baseline: Tensor, value: Tensor) -> Tensor:
    """f(x) minus f with one token's embedding at the baseline, for every token. [T]"""
    if quantity.reuses_prefix:
        return value - quantity.occluded(x, baseline)
    n_tokens = x.shape[0]
    changes = []
    for positions in torch.arange(n_tokens, device=x.device).split(quantity.batch):
        occluded = x.expand(len(positions), -1, -1).clone()  # [n, T, E]: run i hides one
        occluded[torch.arange(len(positions)), positions] = baseline[positions]
        changes.append(value - quantity(occluded))
    return torch.cat(changes)


def rollout(
    model: GPTModel, ids, position: int, interventions: Interventions, edits=None
) -> np.ndarray:
    """Attention rollout's share of each input token in `position`'s stream: [T]."""
    device = next(model.parameters()).device
    trace = capture(model, ids, interventions, device=device, edits=edits)
    n_tokens, identity = len(ids), np.eye(len(ids))
    flow = identity
    for layer in range(model.cfg.n_layers):
        on = [h for h in range(model.cfg.n_heads) if h not in interventions.heads_in(layer)]
        if layer in interventions.skip_layers or not on:
            continue  # the block passes its input through: it contributes I
        weights = trace[stage_key("attn/weights", layer)].astype(np.float64)  # [H, T, T]
        mixed = 0.5 * weights[on].mean(0) + 0.5 * identity
        mixed /= mixed.sum(-1, keepdims=True)
        flow = mixed @ flow
    return flow[position, :n_tokens].astype(np.float32)


def _then(first: Edit, second: Edit) -> Edit:
    return lambda out: second(first(out))


def _numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()
