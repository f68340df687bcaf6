"""Downloading GPT-2 weights from the Hugging Face hub (the `hub` extra), with progress."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import Cancelled, WeightsError

Progress = Callable[[float | None, str], None]  # (fraction done or None, what is happening)


@dataclass(frozen=True)
class HubModel:
    name: str  # what people type: "gpt2", "distilgpt2"
    repo_id: str  # the hub repository
    title: str  # for menus
    megabytes: int  # of its weights file, for "Download … (≈ 550 MB)"


# The GPT-2 family on the hub, smallest first.
HUB_MODELS = (
    HubModel("distilgpt2", "distilbert/distilgpt2", "DistilGPT-2 (82M)", 353),
    HubModel("gpt2", "openai-community/gpt2", "GPT-2 small (124M)", 548),
    HubModel("gpt2-medium", "openai-community/gpt2-medium", "GPT-2 medium (355M)", 1520),
    HubModel("gpt2-large", "openai-community/gpt2-large", "GPT-2 large (774M)", 3250),
    HubModel("gpt2-xl", "openai-community/gpt2-xl", "GPT-2 XL (1.5B)", 6430),
)
# Short names people type, and the hub repositories that hold them.
HUB_ALIASES = {model.name: model.repo_id for model in HUB_MODELS}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HUB_TIMEOUT_S = 5  # the one look at the hub before a download: no network fails this fast


def cached_folder(model_id: str) -> Path | None:
    """The folder of `model_id` in the Hugging Face cache if its config and weights are
    there (no network is touched), else None."""
    from huggingface_hub import try_to_load_from_cache

    repo_id = HUB_ALIASES.get(model_id, model_id)
    config = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(config, str):
        return None
    for weights in _WEIGHT_FILES:
        if isinstance(try_to_load_from_cache(repo_id, weights), str):
            return Path(config).parent
    return None


def is_cached(model_id: str) -> bool:
    """Whether the Hugging Face cache holds `model_id`; False too when the cache cannot be
    read (a broken cache must not stop the app from starting)."""
    try:
        return cached_folder(model_id) is not None
    except Exception:
        return False


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".json", ".npz")


def looks_like_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not text.lower().endswith(_FILE_SUFFIXES)


def download_gpt2(
    model_id: str,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Fetch config.json and the weights of `model_id` into the hub cache; return the folder."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
    except ImportError as exc:
        raise WeightsError(
            f"{model_id!r} is not a file or folder here, and downloading it from the Hugging "
            "Face hub needs huggingface_hub, which this Python lacks: "
            "pip install huggingface_hub"
        ) from exc
    repo_id = HUB_ALIASES.get(model_id, model_id)
    cached = cached_folder(model_id)
    if cached is not None:  # offline at once, as every Hugging Face tool would
        return cached
    if progress is not None:
        progress(None, f"asking the Hugging Face hub for {repo_id}")
    check_hub_reachable(model_id)
    bar = progress_bar_class(progress, cancel)
    try:
        config_path = hf_hub_download(repo_id, "config.json", tqdm_class=bar)
        try:
            hf_hub_download(repo_id, "model.safetensors", tqdm_class=bar)
        except EntryNotFoundError:
            hf_hub_download(repo_id, "pytorch_model.bin", tqdm_class=bar)
    except Cancelled:
        raise
    except RepositoryNotFoundError as exc:
        raise WeightsError(f"the Hugging Face hub has no model {repo_id!r}") from exc
    except Exception as exc:  # offline, DNS, HTTP and cache errors all land here
        raise WeightsError(
            f"could not download {repo_id!r} ({type(exc).__name__}: {str(exc)[:200]}). "
            "Without a network, download the model elsewhere and load its folder "
            "(config.json + model.safetensors)"
        ) from exc
    return Path(config_path).parent


def check_hub_reachable(model_id: str) -> None:
    """Ask the hub once for the model's config.json, with a short timeout and no retries:
    without a network this fails in seconds, not after hf_hub_download's half a minute of
    retries; WeightsError then says what to download where there is a network."""
    from huggingface_hub.errors import RepositoryNotFoundError

    repo_id = HUB_ALIASES.get(model_id, model_id)
    try:
        why = hub_unreachable(repo_id, "config.json")
    except RepositoryNotFoundError as exc:
        raise WeightsError(f"the Hugging Face hub has no model {repo_id!r}") from exc
    if why is not None:
        raise WeightsError(
            f"{model_id!r} is not in the Hugging Face cache and the hub cannot be reached "
            f"({why}). Download it where there is a network: hf download {repo_id}"
            f"{_size_note(repo_id)}, then copy the cache (~/.cache/huggingface/hub) here, or "
            "load a folder holding its config.json and model.safetensors"
        )


def hub_unreachable(repo_id: str, filename: str) -> str | None:
    """Why the hub cannot be reached (offline mode, no network, DNS, refused, timed out),
    from one short look at `filename` with no retries; None when the hub answered, even
    with an error the download itself will report. RepositoryNotFoundError passes through."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename), timeout=HUB_TIMEOUT_S)
    except RepositoryNotFoundError:
        raise
    except HfHubHTTPError:
        return None
    except Exception as exc:
        if isinstance(exc, OfflineModeIsEnabled):
            return "HF_HUB_OFFLINE is set"
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def _size_note(repo_id: str) -> str:
    sizes = {model.repo_id: model.megabytes for model in HUB_MODELS}
    return f" (≈ {sizes[repo_id]:,} MB)" if repo_id in sizes else ""


def _transfer(bar) -> str:
    """ "120 / 548 MB · 12.3 MB/s · 37 s left" from a tqdm bar's counts and rate."""
    done, total = bar.n / 1e6, (bar.total or 0) / 1e6
    rate = bar.format_dict.get("rate") or 0.0
    text = f"{done:,.0f} / {total:,.0f} MB" if total else f"{done:,.0f} MB"
    if rate:
        text += f" · {rate / 1e6:,.1f} MB/s"
        if total:
            text += f" · {max(total - done, 0) / (rate / 1e6):,.0f} s left"
    return text


def progress_bar_class(progress: Progress | None, cancel: Callable[[], bool] | None):
    """A tqdm subclass that reports to `progress` instead of the terminal and stops the
    download when `cancel()` turns true."""
    from tqdm.auto import tqdm

    class ReportingBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = io.StringIO()
            kwargs["disable"] = False  # the hub may disable bars; ours only reports
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if cancel is not None and cancel():
                raise Cancelled("download cancelled")
            result = super().update(n)
            if progress is not None:
                fraction = self.n / self.total if self.total else None
                progress(fraction, f"downloading {self.desc or 'weights'}: {_transfer(self)}")
            return result

    return ReportingBar
