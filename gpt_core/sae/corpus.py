"""A corpus for a feature scan: a text file or a folder of .txt files, tokenised and cut into
windows of N tokens, and the hashes that key the scan's cache."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import SAEError
from ..model import GPTModel, get_tokenizer
from .autoencoder import SparseAutoencoder

MAX_WINDOW = 1024  # GPT-2's context


@dataclass(frozen=True, eq=False)
class Corpus:
    files: tuple[Path, ...]  # the text files, in the order read
    windows: np.ndarray  # int64 [W, N]: the token ids of every window
    digest: str  # sha256 over the files' names and bytes

    @property
    def tokens(self) -> int:
        return int(self.windows.size)


def corpus_files(path: Path) -> tuple[Path, ...]:
    """The file itself, or the folder's .txt files (sorted by name, subfolders too)."""
    path = Path(path).expanduser()
    if path.is_file():
        return (path,)
    if path.is_dir():
        files = tuple(sorted(p for p in path.rglob("*.txt") if p.is_file()))
        if files:
            return files
        raise SAEError(f"the folder {path} holds no .txt files")
    raise SAEError(f"the corpus {path} is no file or folder here")


def read_corpus(path: Path, window: int, vocab_size: int) -> Corpus:
    """The corpus at `path` cut into windows of `window` tokens (the last, shorter piece of
    each file is left out: every window is full). SAEError for unreadable text, a window out
    of range or a corpus shorter than one window."""
    if not 2 <= window <= MAX_WINDOW:
        raise SAEError(f"a window is 2 to {MAX_WINDOW:,} tokens, got {window:,}")
    tokenizer, digest, pieces = get_tokenizer(), hashlib.sha256(), []
    files = corpus_files(path)
    for file in files:
        try:
            data = file.read_bytes()
            text = data.decode("utf-8")
        except OSError as exc:
            raise SAEError(f"cannot read {file}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise SAEError(f"{file} is not UTF-8 text ({exc.reason})") from exc
        digest.update(file.name.encode() + b"\0" + hashlib.sha256(data).digest())
        ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
        usable = len(ids) // window * window
        pieces.append(ids[:usable].reshape(-1, window))  # [W_file, N]
    windows = np.concatenate(pieces) if pieces else np.zeros((0, window), np.int64)
    if not len(windows):
        raise SAEError(f"the corpus has fewer tokens than one window of {window}")
    if int(windows.max()) >= vocab_size:
        raise SAEError(f"the corpus has token ids past this model's vocabulary ({vocab_size:,})")
    return Corpus(files, windows, digest.hexdigest())


def tensors_digest(tensors) -> str:
    """sha256 over tensors' shapes and bytes: a model's or an SAE's identity for the cache."""
    digest = hashlib.sha256()
    for tensor in tensors:
        if tensor is None:
            continue
        t = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def model_digest(model: GPTModel) -> str:
    return tensors_digest(model.state_dict().values())


def sae_digest(sae: SparseAutoencoder) -> str:
    return tensors_digest([sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, sae.threshold]) + (
        f"-{sae.architecture}-{sae.cfg.k}-{sae.cfg.apply_b_dec_to_input}-{sae.hook_name}"
    )
