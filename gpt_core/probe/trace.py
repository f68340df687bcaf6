"""Trace: what one run of the model computed, as immutable float32 numpy arrays on the CPU.

A Trace is what the GUI draws and what exports write. `trace[key]` gives an array,
`trace.stages` lists the stages in data-flow order. Attention weights are held packed to
half their size (_causal_pack.py) and unpacked on access; `head_weights` unpacks one head.
Attention scores are not held at all: they are recomputed from the queries and keys on
access (_scores.py); `head_scores` computes one head.
`save`/`load` use an .npz file whose keys are the trace keys (documented in the README)
plus "meta/json", a JSON string with everything that is not an array (config, device,
interventions, stage list, losses and the backward step's summary). Attention weights and
their gradients are stored as each head's lower triangle; loading checks the whole file
against its own config before reading any array (_trace_file.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from ..errors import TraceError
from ..model.config import GPTConfig
from ..util.atomic import atomic_path
from ._causal_pack import PackedCausal, pack_causal
from ._scores import causal_scores, scores_shape
from ._trace_file import META_KEY, is_causal_weights, read_trace_file
from ._trace_meta import FORMAT_NAME, FORMAT_VERSION, STAGES_ADDED
from .interventions import Interventions
from .stage_spec import operation
from .stages import grad_key, module_path, parse_key, stage_key, stage_specs

DEFAULT_TOP_K = 20  # predictions a run keeps per position


@dataclass(frozen=True)
class Stage:
    key: str  # trace key, e.g. "blocks/3/attn/weights"
    layer: int | None  # 0-based block index; None outside the blocks
    layout: str  # array layout: "tokens_dims", "causal_heads", ... (see stages.py)
    title: str  # short label
    module: str  # the module that produced it, e.g. "trf_blocks.3.att.weights_point"
    shape: tuple[int, ...]  # of the array, batch dimension dropped
    formula: str  # what it computes, in symbols
    explanation: str  # what it computes, in words
    operation: str  # what it computes, with this run's shapes: "[14, 768] @ W_query ..."


@dataclass(frozen=True)
class ParamGrad:
    name: str  # parameter name, e.g. "trf_blocks.0.att.W_query.weight"
    shape: tuple[int, ...]  # of the parameter
    grad_norm: float  # L2 norm of its gradient
    weight_norm: float  # L2 norm of its weights

    @property
    def ratio(self) -> float:
        """How large one plain SGD step with lr = 1 would be relative to the weights."""
        return self.grad_norm / self.weight_norm if self.weight_norm else float("inf")


@dataclass(frozen=True)
class BackwardInfo:
    loss: float  # the loss backward() started from
    target: tuple[int, int] | None  # (position, token id) for a one-token loss; None: whole prompt
    order: tuple[tuple[str, float], ...]  # (stage key, gradient norm), in the order reached
    params: tuple[ParamGrad, ...]  # every parameter, in model order
    sgd_lr: float | None = None  # learning rate of the optional SGD step
    loss_after_sgd: float | None = None  # the same loss after that step (on a copy)
    eval_loss: float | None = None  # training mode: the same loss with dropout off

    @classmethod
    def from_dict(cls, data: dict) -> BackwardInfo:
        """The inverse of dataclasses.asdict (JSON turns the tuples into lists)."""
        return cls(
            loss=data["loss"],
            target=tuple(data["target"]) if data["target"] else None,
            order=tuple((key, float(norm)) for key, norm in data["order"]),
            params=tuple(
                ParamGrad(p["name"], tuple(p["shape"]), p["grad_norm"], p["weight_norm"])
                for p in data["params"]
            ),
            sgd_lr=data["sgd_lr"],
            loss_after_sgd=data["loss_after_sgd"],
            eval_loss=data.get("eval_loss"),  # files before training mode lack it
        )


@dataclass(frozen=True, eq=False)
class Trace:
    token_ids: np.ndarray  # [T] int64
    token_strings: tuple[str, ...]  # display string per token
    stages: tuple[Stage, ...]  # in data-flow order
    store: Mapping[str, np.ndarray | PackedCausal]  # every array by key, read-only
    config: GPTConfig
    device: str  # "cpu", "cuda:0", ...
    interventions: Interventions = field(default_factory=Interventions)
    loss: float | None = None  # mean next-token cross-entropy over the prompt (T >= 2)
    top_k: int = DEFAULT_TOP_K  # predictions kept per position
    run_seconds: float = 0.0  # wall time of the run that made it
    backward: BackwardInfo | None = None  # set by backward_step
    dropout_seed: int | None = None  # training mode (dropout on), seeded so; None: evaluation

    @property
    def training(self) -> bool:
        """Whether dropout acted in the run (its masks are stages of the trace)."""
        return self.dropout_seed is not None

    def __post_init__(self) -> None:
        store = {}
        for key, value in self.store.items():
            if isinstance(value, np.ndarray) and is_causal_weights(key) and value.ndim == 3:
                weights = torch.from_numpy(np.ascontiguousarray(value))  # [H, T, T]
                value = PackedCausal.from_parts(pack_causal(weights))
            for array in _parts(value):
                array.flags.writeable = False
            store[key] = value
        object.__setattr__(self, "store", MappingProxyType(store))
        derived = frozenset(s.key for s in self.stages if parse_key(s.key)[0].derived)
        object.__setattr__(self, "_derived", derived)  # keys recomputed on access
        # The last few unpacked or derived attention arrays (whole stages by key, single heads
        # by (key, head)), so a view redrawn twice unpacks once.
        object.__setattr__(self, "_dense", OrderedDict())

    # --- reading ---
    def __getitem__(self, key: str) -> np.ndarray:
        value = self.store.get(key)
        if isinstance(value, np.ndarray):
            return value
        if value is None and key not in self._derived:
            raise TraceError(f"this trace has no {key!r}{_why_missing(key)}")
        return self._kept(key, lambda: value.unpack() if value is not None else self._derive(key))

    def head_weights(self, layer: int, head: int) -> np.ndarray:
        """One head's attention weights [T, T], without unpacking the other heads."""
        key = stage_key("attn/weights", layer)
        value = self.store.get(key)
        if isinstance(value, PackedCausal) and key not in self._dense:
            return self._kept((key, head), lambda: value.unpack(head))
        return self[key][head]

    def head_scores(self, layer: int, head: int) -> np.ndarray:
        """One head's scaled, masked attention scores [T, T], computed for that head only."""
        key = stage_key("attn/scores", layer)
        if key in self._dense or key not in self._derived:  # cached, or a clear TraceError
            return self[key][head]
        return self._kept((key, head), lambda: causal_scores(*self._derive_sources(key), head))

    def _kept(self, name, make) -> np.ndarray:
        """`make()`, kept read-only among the last few arrays made: a view that reads one
        head's weights and scores on every click makes them once (at T = 1,024 one head's
        scores take tens of ms)."""
        dense = self._dense.get(name)
        if dense is None:
            dense = make()
            dense.flags.writeable = False
            self._dense[name] = dense
            while len(self._dense) > _DENSE_CACHE_SIZE:
                self._dense.popitem(last=False)
        else:
            self._dense.move_to_end(name)
        return dense

    def __contains__(self, key: str) -> bool:
        return key in self.store or key in self._derived

    def keys(self) -> Iterator[str]:
        """Every key it holds or derives: the stages in data-flow order, then the rest."""
        staged = [stage.key for stage in self.stages]
        seen = set(staged)
        return iter(staged + [key for key in self.store if key not in seen])

    __iter__ = keys

    def stage(self, key: str) -> Stage:
        for stage in self.stages:
            if stage.key == key:
                return stage
        raise TraceError(f"this trace has no stage {key!r}")

    def grad(self, key: str) -> np.ndarray | None:
        """The gradient of the loss with respect to stage `key`, if a backward step made one
        (for attention weights: zero above the diagonal, where the mask holds them)."""
        key = grad_key(key)
        return self[key] if key in self.store else None

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def position_labels(self) -> list[str]:
        """ "position:token" labels, unique even where a token repeats."""
        return [f"{i}:{s}" for i, s in enumerate(self.token_strings)]

    @property
    def nbytes(self) -> int:
        """Memory the trace's arrays take (attention weights and their gradients packed)."""
        return sum(a.nbytes for a in self.store.values())

    # --- files ---
    def save(self, path: str | os.PathLike) -> Path:
        """Write an .npz (uncompressed, so loading is quick); atomic, like save_model."""
        path = Path(path).expanduser()
        with atomic_path(path, TraceError) as tmp, open(tmp, "wb") as f:
            arrays = {
                key: value.lower_triangle() if isinstance(value, PackedCausal) else value
                for key, value in self.store.items()
            }
            np.savez(f, **arrays, **{META_KEY: np.array(json.dumps(self._meta()))})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trace:
        """A saved trace; TraceError for a file that is damaged or does not fit together
        (checked before any array is read, so a false header cannot exhaust memory)."""
        meta, arrays = read_trace_file(Path(path).expanduser())
        return cls(
            token_ids=arrays["tokens/ids"],
            token_strings=meta.token_strings,
            stages=make_stages(meta.config, {k: a.shape for k, a in arrays.items()}),
            store=arrays,
            config=meta.config,
            device=meta.device,
            interventions=meta.interventions,
            loss=meta.loss,
            top_k=meta.top_k,
            run_seconds=meta.run_seconds,
            backward=BackwardInfo.from_dict(meta.backward) if meta.backward else None,
            dropout_seed=meta.dropout_seed,
        )

    def _file_version(self) -> int:
        """The newest format whose stages this trace holds: a trace loaded from an older
        file (no queries, keys or values) is saved as that format, so it loads again."""
        for version in sorted(STAGES_ADDED):
            if any(stage_key(name, 0) not in self.store for name in STAGES_ADDED[version]):
                return version - 1
        return FORMAT_VERSION

    def _meta(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "version": self._file_version(),
            "config": self.config.to_dict(),
            "device": self.device,
            "interventions": self.interventions.to_dict(),
            "token_strings": list(self.token_strings),
            "loss": self.loss,
            "top_k": self.top_k,
            "run_seconds": self.run_seconds,
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "backward": dataclasses.asdict(self.backward) if self.backward else None,
            "mode": "train" if self.training else "eval",
            "dropout_seed": self.dropout_seed,
        }

    def _derive_sources(self, key: str) -> list[np.ndarray]:
        spec, layer = parse_key(key)
        return [self[stage_key(name, layer)] for name in spec.derived_from]

    def _derive(self, key: str) -> np.ndarray:
        return causal_scores(*self._derive_sources(key))  # the one derived layout


_DENSE_CACHE_SIZE = 3


def _why_missing(key: str) -> str:
    """A hint for a stage the trace lacks: only a file from an older version can."""
    try:
        parse_key(key)
    except KeyError:
        return ""
    return " (it was saved by an older GPT Explorer, which did not record that stage)"


def _parts(value: np.ndarray | PackedCausal) -> list[np.ndarray]:
    if isinstance(value, PackedCausal):
        return [value.fold, value.bottom_left, value.c_diagonal, value.last_row]
    return [value]


def make_stages(cfg: GPTConfig, shapes: Mapping[str, tuple[int, ...]]) -> tuple[Stage, ...]:
    """Stage records for a run of a model with this config, given each stored key's array
    shape: every stage stored or derivable (a trace from an older file lacks newer ones)."""
    stages = []
    n_tokens = shapes["tokens/ids"][0]
    for spec, layer in stage_specs(cfg):
        key = stage_key(spec.name, layer)
        if spec.derived:
            sources = [stage_key(name, layer) for name in spec.derived_from]
            if not all(source in shapes for source in sources):
                continue
            shape = scores_shape(shapes[sources[0]])  # the one derived layout
        elif key in shapes:
            shape = shapes[key]
        else:
            continue
        stages.append(
            Stage(
                key,
                layer,
                spec.layout,
                spec.title,
                module_path(spec, layer),
                tuple(shape),
                spec.formula,
                spec.explanation,
                operation(spec, cfg, n_tokens),
            )
        )
    return tuple(stages)
