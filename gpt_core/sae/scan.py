"""scan_corpus(): where each feature fires most in a corpus: for every feature its top K
windows, with the position and the activation.

- Each run stops at the SAE's site: nothing after it is computed.
- The top K are kept streaming (the batch's top K per feature merged with the K so far), so
  memory is [d_sae, K] plus one batch's activations, however long the corpus.
- progress(tokens done, tokens in all, tokens per second) after each batch; should_stop()
  is polled between batches and stops the scan with Cancelled.
- The state is saved to the cache folder as the scan goes (every SAVE_EVERY_S seconds and
  at a cancel), keyed by the model's, the SAE's and the corpus files' hashes with the window
  and K; the same scan again resumes where it stopped, or reloads a finished one at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import Cancelled, SAEError
from ..model import GPTModel
from ..probe.hook_points import hooked
from ..util.atomic import atomic_path
from .autoencoder import SparseAutoencoder
from .corpus import model_digest, read_corpus, sae_digest
from .sites import site_of

DEFAULT_WINDOW = 64
DEFAULT_SCAN_TOP = 20
SAVE_EVERY_S = 30.0
BATCH_TOKENS = 2048  # tokens per batched run: activations of 2,048 × 24,576 floats = 200 MB
ScanProgress = Callable[[int, int, float], None]  # tokens done, tokens in all, tokens/s


@dataclass(frozen=True, eq=False)
class ScanResult:
    top_acts: np.ndarray  # float32 [d_sae, K]: each feature's K largest activations, descending
    top_where: np.ndarray  # int64 [d_sae, K, 2]: (window, position) of each; -1 where none
    windows: np.ndarray  # int64 [W, N]: the token ids of every window
    tokens: int  # tokens scanned
    seconds: float  # time spent scanning (over every session of a resumed scan)
    from_cache: bool  # reloaded finished from the cache

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


class TopK:
    """Each feature's K largest activations so far and where they were."""

    def __init__(self, d_sae: int, k: int, device: torch.device):
        self.acts = torch.zeros(d_sae, k, device=device)  # [d_sae, K]
        self.where = torch.full((d_sae, k), -1, dtype=torch.int64, device=device)  # flat token

    def add(self, acts: Tensor, first_token: int) -> None:
        """Merge a batch's activations [n, d_sae], whose token 0 is corpus token
        `first_token`."""
        k = min(self.acts.shape[1], acts.shape[0])
        batch = acts.T.topk(k, dim=1)  # [d_sae, k]
        values = torch.cat([self.acts, batch.values], dim=1)  # [d_sae, K + k]
        where = torch.cat([self.where, batch.indices + first_token], dim=1)
        best = values.topk(self.acts.shape[1], dim=1)  # [d_sae, K]
        self.acts = best.values
        self.where = where.gather(1, best.indices)

    def result(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        acts = self.acts.clamp(min=0).cpu().numpy().astype(np.float32)
        flat = self.where.cpu().numpy()
        where = np.stack([flat // window, flat % window], axis=-1)  # [d_sae, K, 2]
        where[acts <= 0] = -1  # an inactive feature has no top windows
        return acts, where


def scan_corpus(
    model: GPTModel,
    sae: SparseAutoencoder,
    corpus: str | Path,
    *,
    window: int = DEFAULT_WINDOW,
    top_k: int = DEFAULT_SCAN_TOP,
    cache_dir: Path | None = None,
    progress: ScanProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ScanResult:
    """Each feature's top K windows of the corpus (a text file or a folder of .txt files)."""
    if not 1 <= top_k <= 1000:
        raise SAEError(f"top contexts per feature are 1 to 1,000, got {top_k:,}")
    site = site_of(sae.hook_name, model.cfg)
    text = read_corpus(Path(corpus), window, model.cfg.vocab_size)
    device = next(model.parameters()).device
    sae = sae.to(device)
    # the key hashes the model's and the SAE's weights: made only when there is a cache
    key = _key(model, sae, text.digest, window, top_k) if cache_dir is not None else ""
    state = _State.open(cache_dir, key, sae, top_k)
    if state.done == len(text.windows):
        return state.finish(text.windows, window, from_cache=True)
    per_batch = max(1, BATCH_TOKENS // window)
    start, last_save = time.perf_counter(), time.perf_counter()
    seconds_before, first = state.seconds, state.done
    try:
        while state.done < len(text.windows):
            if should_stop is not None and should_stop():
                raise Cancelled("scan cancelled")
            batch = text.windows[state.done : state.done + per_batch]  # [b, N]
            acts = _site_features(model, sae, site, torch.as_tensor(batch, device=device))
            state.top.add(acts, state.done * window)
            state.done += len(batch)
            state.seconds = seconds_before + time.perf_counter() - start
            if progress is not None:
                rate = (state.done - first) * window / max(time.perf_counter() - start, 1e-9)
                progress(state.done * window, text.tokens, rate)
            if time.perf_counter() - last_save > SAVE_EVERY_S:
                state.save()
                last_save = time.perf_counter()
    except (Cancelled, KeyboardInterrupt):
        state.save()
        raise
    state.save()
    return state.finish(text.windows, window, from_cache=False)


class _SiteReached(Exception):
    """Raised at the site to stop the run there."""


def _site_features(model, sae: SparseAutoencoder, site, ids: Tensor) -> Tensor:
    """The SAE's features of a batch of windows [b, N] -> [b·N, d_sae], the run stopped at
    the site."""
    seen: dict[str, Tensor] = {}

    def stop(x: Tensor) -> Tensor:  # x: [b, N, d_in]
        seen["x"] = x
        raise _SiteReached

    with torch.inference_mode(), hooked(model, edits={site.key: site.edit(stop)}):
        with contextlib.suppress(_SiteReached):  # the run stops at the site
            model(ids)
        return sae.encode(seen["x"].reshape(-1, sae.d_in))


def _key(model, sae, corpus_digest: str, window: int, top_k: int) -> str:
    parts = [model_digest(model), sae_digest(sae), corpus_digest, f"{window}-{top_k}"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class _State:
    """The scan so far, and its file in the cache folder (none without a folder)."""

    def __init__(self, path: Path | None, top: TopK):
        self.path, self.top, self.done, self.seconds = path, top, 0, 0.0

    @classmethod
    def open(cls, cache_dir: Path | None, key: str, sae: SparseAutoencoder, k: int) -> _State:
        path = None if cache_dir is None else Path(cache_dir).expanduser() / f"scan-{key}.npz"
        if path is not None:  # made now: a cache that cannot be written fails before the work
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SAEError(f"cannot make the scan cache {path.parent}: {exc.strerror}") from exc
        state = cls(path, TopK(sae.d_sae, k, sae.device))
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as saved:
                    acts, where = saved["acts"], saved["where"]
                    done, seconds = int(saved["done"]), float(saved["seconds"])
            except (OSError, ValueError, KeyError):
                return state  # a damaged cache file is started again, not trusted
            if acts.shape == (sae.d_sae, k) and where.shape == (sae.d_sae, k):
                state.top.acts = torch.as_tensor(acts, device=sae.device)
                state.top.where = torch.as_tensor(where, device=sae.device)
                state.done, state.seconds = done, seconds
        return state

    def save(self) -> None:
        if self.path is None:
            return
        arrays = {
            "acts": self.top.acts.cpu().numpy(),
            "where": self.top.where.cpu().numpy(),
            "done": np.int64(self.done),
            "seconds": np.float64(self.seconds),
        }
        with atomic_path(self.path, SAEError) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    def finish(self, windows: np.ndarray, window: int, from_cache: bool) -> ScanResult:
        acts, where = self.top.result(window)
        return ScanResult(acts, where, windows, int(windows.size), self.seconds, from_cache)
