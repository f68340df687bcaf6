"""The JSON metadata of a trace file, checked field by field: a wrong type anywhere is a
TraceError naming the field, never a TypeError or AttributeError from deeper down."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TraceError
from ..model.config import GPTConfig
from .interventions import Interventions

FORMAT_NAME = "gpt-explorer-trace"
# 2: attention weights and their gradients stored as lower triangles
# 3: queries, keys and values
# 4: "mode" ("eval" or "train") and "dropout_seed"; a training-mode trace's dropout masks
FORMAT_VERSION = 4
TRAINING_MODE_SINCE = 4
STAGES_ADDED = {3: ("attn/queries", "attn/keys", "attn/values")}  # by the version adding them
_NUMBER = (int, float)


def stored_since(stage: str) -> int:
    """The first format version whose files hold stage `stage` ("attn/keys")."""
    return next((v for v, names in STAGES_ADDED.items() if stage in names), 1)


@dataclass(frozen=True)
class TraceMeta:
    version: int
    config: GPTConfig
    device: str
    interventions: Interventions
    token_strings: tuple[str, ...]
    loss: float | None
    top_k: int
    run_seconds: float
    backward: dict | None  # checked, for BackwardInfo.from_dict
    dropout_seed: int | None  # training mode, seeded so; None: evaluation mode

    @property
    def training(self) -> bool:
        return self.dropout_seed is not None


def check_meta(meta: object) -> TraceMeta:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise TraceError("the file is not a GPT Explorer trace")
    version = _field(meta, "version", int)
    if not 1 <= version <= FORMAT_VERSION:
        raise TraceError(
            f"the trace file has format version {version}; this GPT Explorer reads 1 to "
            f"{FORMAT_VERSION}"
        )
    try:
        config = GPTConfig.from_dict(_field(meta, "config", dict))
    except (TypeError, ValueError) as exc:
        raise TraceError(f"the trace file's config is damaged: {exc}") from None
    top_k = _field(meta, "top_k", int)
    if not 1 <= top_k <= config.vocab_size:
        raise TraceError(f"the trace file's top_k ({top_k}) is outside 1..{config.vocab_size}")
    strings = _field(meta, "token_strings", list)
    _each(strings, str, "token_strings")
    backward = _field(meta, "backward", (dict, type(None)))
    if backward is not None:
        _check_backward(backward)
    return TraceMeta(
        version=version,
        config=config,
        device=_field(meta, "device", str),
        interventions=_interventions(_field(meta, "interventions", dict), config),
        token_strings=tuple(strings),
        loss=_field(meta, "loss", (*_NUMBER, type(None))),
        top_k=top_k,
        run_seconds=_field(meta, "run_seconds", _NUMBER),
        backward=backward,
        dropout_seed=_dropout_seed(meta, version),
    )


def _dropout_seed(meta: dict, version: int) -> int | None:
    """The dropout seed of a training-mode run; None for evaluation mode, which every file
    from before training mode holds."""
    if version < TRAINING_MODE_SINCE:
        return None
    mode = _field(meta, "mode", str)
    seed = _field(meta, "dropout_seed", (int, type(None)))
    if mode not in ("eval", "train") or (mode == "train") != (seed is not None):
        raise TraceError(f"the trace file's mode {mode!r:.20} does not fit its dropout seed {seed}")
    return seed


def _field(data: dict, name: str, kinds, where: str = "metadata"):
    """data[name], which must be one of `kinds` (never a bool standing in for a number)."""
    if name not in data:
        raise TraceError(f"the trace file's {where} lack {name!r}")
    value = data[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise TraceError(
            f"the trace file's {where} field {name!r} is {type(value).__name__} {value!r:.60}"
        )
    return value


def _tuple(kinds) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _each(items: list, kinds, where: str) -> None:
    for item in items:
        if not isinstance(item, kinds) or isinstance(item, bool):
            raise TraceError(f"the trace file's {where} hold {type(item).__name__} {item!r:.60}")


def _interventions(data: dict, config: GPTConfig) -> Interventions:
    heads = _field(data, "ablate_heads", list, "interventions")
    for pair in heads:
        if not isinstance(pair, list) or len(pair) != 2:
            raise TraceError(f"the trace file's ablated heads hold {pair!r:.60}")
        _each(pair, int, "ablated heads")
    _each(_field(data, "skip_layers", list, "interventions"), int, "skipped blocks")
    _field(data, "mode", str, "interventions")
    try:
        interventions = Interventions.from_dict(data)
        interventions.check(config)
    except ValueError as exc:
        raise TraceError(f"the trace file's interventions do not fit its model: {exc}") from None
    return interventions


def _check_backward(data: dict) -> None:
    _field(data, "loss", _NUMBER, "backward step")
    target = _field(data, "target", (list, type(None)), "backward step")
    if target is not None and len(target) != 2:
        raise TraceError(f"the trace file's backward target is {target!r:.60}")
    _each(target or [], int, "backward target")
    for item in _field(data, "order", list, "backward step"):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise TraceError(f"the trace file's backward order holds {item!r:.60}")
        _each(item[1:], _NUMBER, "backward order's norms")
    for param in _field(data, "params", list, "backward step"):
        if not isinstance(param, dict):
            raise TraceError(f"the trace file's parameter list holds {param!r:.60}")
        _field(param, "name", str, "parameter")
        _each(_field(param, "shape", list, "parameter"), int, "parameter shapes")
        _field(param, "grad_norm", _NUMBER, "parameter")
        _field(param, "weight_norm", _NUMBER, "parameter")
    _field(data, "sgd_lr", (*_NUMBER, type(None)), "backward step")
    _field(data, "loss_after_sgd", (*_NUMBER, type(None)), "backward step")
    if "eval_loss" in data:  # from format 4 on
        _field(data, "eval_loss", (*_NUMBER, type(None)), "backward step")
