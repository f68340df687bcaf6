"""Reading a trace file without trusting it: every array's .npy header is checked against
the shape and dtype the file's own config gives it before any array data is read, so a
damaged or hostile file is refused with a TraceError instead of allocating what its
headers claim; then the contents are checked (token ids in the vocabulary, the token
strings those ids', attention causal)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import TraceError
from ..model import get_tokenizer
from ..model.config import GPTConfig
from ._causal_pack import PackedCausal
from ._trace_meta import TraceMeta, check_meta, stored_since
from .stage_spec import CAUSAL_HEADS, TOKEN_STAT, TOKENS_HEADS_DIMS, TOP_IDS
from .stages import GRAD_PREFIX, parse_key, stage_key, stage_specs

META_KEY = "meta/json"
_META_MAX_CHARS = 1 << 24  # far above any real trace's metadata
_DEFLATE_MAX_RATIO = 1100  # deflate cannot expand past about 1032 to 1
_FLOAT, _INT = np.dtype(np.float32), np.dtype(np.int64)
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_FF_HIDDEN = {"ff/pre_gelu", "ff/gelu"}  # the feed-forward's hidden layer is 4 E wide


def read_trace_file(path: Path) -> tuple[TraceMeta, dict[str, np.ndarray | PackedCausal]]:
    """The checked metadata and every array (attention weights and their gradients packed)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, path)
            meta = check_meta(_read_meta(archive, members, path))
            ids = _read_token_ids(archive, members, meta)
            expected = expected_arrays(meta, ids.shape[0])
            headers = {key: _header(archive, info) for key, info in members.items()}
            _check_headers(headers, expected, ids.shape[0])
            arrays = {"tokens/ids": ids} | {
                key: _read(archive, members[key])
                for key in headers
                if key not in (META_KEY, "tokens/ids")
            }
    except FileNotFoundError:
        raise TraceError(f"no such file: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise TraceError(f"{path.name} is not a readable trace file ({exc})") from exc
    _check_contents(meta, arrays)
    return meta, _packed(meta, arrays)


def expected_arrays(meta: TraceMeta, n_tokens: int) -> dict[str, tuple[np.dtype, tuple]]:
    """(dtype, shape) of every array a trace of this config, length and format version may
    hold (_optional says which it may lack); never a derived stage's."""
    cfg, T, k = meta.config, n_tokens, meta.top_k
    expected = {
        "logits/topk_probs": (_FLOAT, (T, k)),
        "logits/last": (_FLOAT, (cfg.vocab_size,)),
        "loss/per_token": (_FLOAT, (T - 1,)),
        "tokens/ids": (_INT, (T,)),
        "logits/tracked_ids": (_INT, (T,)),
        "logits/tracked_probs": (_FLOAT, (T,)),
    }
    if meta.backward is not None:
        expected[GRAD_PREFIX + "logits/last"] = expected["logits/last"]
    for spec, layer in stage_specs(cfg):
        if spec.derived or meta.version < stored_since(spec.name):
            continue  # recomputed on access; or newer than the file
        if spec.is_dropout_mask and not meta.training:
            continue  # drawn in training mode only
        key = stage_key(spec.name, layer)
        if spec.layout == TOP_IDS:
            expected[key] = (_INT, (T, k))
            continue
        expected[key] = (_FLOAT, _stage_shape(spec, cfg, T, meta.version))
        if meta.backward is not None and not spec.is_dropout_mask:  # a mask has no gradient
            expected[GRAD_PREFIX + key] = expected[key]
    return expected


def _stage_shape(spec, cfg: GPTConfig, T: int, version: int) -> tuple[int, ...]:
    if spec.layout == TOKEN_STAT:
        return (T,)
    if spec.layout == CAUSAL_HEADS:  # version 1 files hold them dense
        return (cfg.n_heads, T, T) if version == 1 else (cfg.n_heads, T * (T + 1) // 2)
    if spec.layout == TOKENS_HEADS_DIMS:
        return (T, cfg.n_heads, cfg.head_dim)
    return (T, 4 * cfg.emb_dim if spec.name in _FF_HIDDEN else cfg.emb_dim)


def _optional(key: str) -> bool:
    """Arrays a trace may lack: the tracked probabilities, and the gradient of a stage that
    backward never reached (a skipped block)."""
    return key.startswith(("logits/tracked_", GRAD_PREFIX))


# --- the zip members and their headers ---
def _members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    members, stored = {}, 0
    for info in archive.infolist():
        key = info.filename.removesuffix(".npy")
        if key == info.filename or key in members:
            raise TraceError(f"{path.name} holds {info.filename!r}, which no trace holds")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise TraceError(f"{path.name} is damaged: {info.filename} has two sizes")
        if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
            raise TraceError(f"{path.name} is damaged: {info.filename} claims an impossible size")
        members[key] = info
        stored += info.compress_size
    if stored > os.path.getsize(path):
        raise TraceError(f"{path.name} is damaged: its members claim more than the file holds")
    if META_KEY not in members:
        raise TraceError(f"{path.name} is an .npz file but not a GPT Explorer trace")
    return members


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[np.dtype, tuple]:
    """The member's dtype and shape, from its .npy header; checks the member holds exactly
    the data the header announces."""
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version not in _HEADER_READERS:
                raise ValueError(f"header version {version}, which no trace uses")
            shape, _, dtype = _HEADER_READERS[version](f)
        except ValueError as exc:
            raise TraceError(f"{info.filename} is not a readable array ({exc})") from None
        data_bytes = info.file_size - f.tell()
    if dtype.hasobject or data_bytes != int(np.prod(shape, dtype=object)) * dtype.itemsize:
        raise TraceError(f"{info.filename}: its header ({dtype}, {shape}) does not fit its data")
    return dtype, tuple(shape)


def _check_headers(headers: dict, expected: dict, n_tokens: int) -> None:
    for key, (dtype, shape) in headers.items():
        if key == META_KEY:
            continue
        if key not in expected:
            raise TraceError(f"the trace file holds {key!r}, which no trace of its model holds")
        want_dtype, want_shape = expected[key]
        if dtype != want_dtype or shape != want_shape:
            raise TraceError(
                f"{key} is {dtype} {list(shape)}, but the file's config and {n_tokens} tokens "
                f"make it {want_dtype} {list(want_shape)}"
            )
    missing = [key for key in expected if key not in headers and not _optional(key)]
    if missing:
        raise TraceError(f"the trace file lacks {missing[0]!r}")
    tracked = [key for key in ("logits/tracked_ids", "logits/tracked_probs") if key in headers]
    if len(tracked) == 1:
        raise TraceError(f"the trace file has {tracked[0]!r} without its partner")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_meta(archive, members: dict[str, zipfile.ZipInfo], path: Path) -> object:
    dtype, shape = _header(archive, members[META_KEY])
    if dtype.kind != "U" or shape != () or dtype.itemsize > 4 * _META_MAX_CHARS:
        raise TraceError(f"{path.name}: {META_KEY} is not a JSON string")
    try:
        return json.loads(str(_read(archive, members[META_KEY])))
    except (ValueError, RecursionError) as exc:
        raise TraceError(f"{path.name}: {META_KEY} is not valid JSON ({exc})") from None


def _read_token_ids(archive, members: dict[str, zipfile.ZipInfo], meta: TraceMeta) -> np.ndarray:
    if "tokens/ids" not in members:
        raise TraceError("the trace file lacks 'tokens/ids'")
    dtype, shape = _header(archive, members["tokens/ids"])
    limit = meta.config.context_length
    if dtype != _INT or len(shape) != 1 or not 1 <= shape[0] <= limit:
        raise TraceError(
            f"tokens/ids is {dtype} {list(shape)}; a trace holds 1 to {limit} int64 token ids"
        )
    return _read(archive, members["tokens/ids"])


# --- the contents ---
def _check_contents(meta: TraceMeta, arrays: dict[str, np.ndarray]) -> None:
    vocab = meta.config.vocab_size
    for key in ("tokens/ids", "logits/topk_ids", "logits/tracked_ids"):
        ids = arrays.get(key)
        if ids is not None and ids.size and not (ids.min() >= 0 and ids.max() < vocab):
            bad = ids[(ids < 0) | (ids >= vocab)].flat[0]
            raise TraceError(f"{key} holds {bad}, outside the vocabulary (0..{vocab - 1})")
    strings = get_tokenizer().displays(arrays["tokens/ids"].tolist())
    if len(meta.token_strings) != len(strings):
        raise TraceError(
            f"the trace has {len(meta.token_strings)} token strings for {len(strings)} tokens"
        )
    for position, (said, actual) in enumerate(zip(meta.token_strings, strings, strict=True)):
        if said != actual:
            raise TraceError(
                f"token string {position} is {said!r}, but token id "
                f"{arrays['tokens/ids'][position]} is {actual!r}"
            )
    if meta.version == 1:  # dense weights: the mask must have zeroed the upper triangle
        for key, value in arrays.items():
            if (
                is_causal_weights(key)
                and not key.startswith(GRAD_PREFIX)
                and np.triu(value, 1).any()
            ):
                raise TraceError(f"{key} is not causal: a token attends to a later one")


def is_causal_weights(key: str) -> bool:
    """Attention weights, or their gradient: [H, T, T] with a causal lower triangle."""
    try:
        return parse_key(key.removeprefix(GRAD_PREFIX))[0].layout == CAUSAL_HEADS
    except KeyError:  # not a stage: logits/..., tokens/ids
        return False


def _packed(meta: TraceMeta, arrays: dict[str, np.ndarray]) -> dict:
    """Attention weights and their gradients packed; a version 1 file's dense gradient
    loses its masked half, as gradients are kept now."""
    T = arrays["tokens/ids"].shape[0]
    out = {}
    for key, value in arrays.items():
        if is_causal_weights(key) and meta.version > 1:
            value = PackedCausal.from_lower_triangle(value, T)
        out[key] = value  # version 1: dense, packed by Trace
    return out
