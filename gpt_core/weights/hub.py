"""Downloading GPT-2 weights from the Hugging Face hub (the `hub` extra), with progress."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import Cancelled, WeightsError

Progress = Callable[[float | None, str], None]  # (fraction done or None, what is happening)

# Short names people type, and the hub repositories that hold them.
HUB_ALIASES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
}
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
            "Face hub needs the hub extra: pip install -e '.[hub]'"
        ) from exc
    repo_id = HUB_ALIASES.get(model_id, model_id)
    bar = _progress_bar_class(progress, cancel)
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


def _progress_bar_class(progress: Progress | None, cancel: Callable[[], bool] | None):
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
                progress(fraction, f"downloading {self.desc or 'weights'}")
            return result

    return ReportingBar
