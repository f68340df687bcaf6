"""Where an SAE comes from: a local folder, or `REPO:FOLDER` on the Hugging Face hub (read
from its cache, else downloaded with progress and Cancel), and the public GPT-2 small
releases to pick from.

A release's short name stands for its repository: `gpt2-small-res-jb:blocks.8.hook_resid_pre`
is `jbloom/GPT2-Small-SAEs-Reformatted:blocks.8.hook_resid_pre`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import Cancelled, SAEError
from ..weights.hub import Progress, hub_unreachable, progress_bar_class

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
SAE_FILES = (CFG_FILE, WEIGHTS_FILE)


@dataclass(frozen=True)
class SAERelease:
    name: str  # SAELens's release name, usable in place of the repository
    repo_id: str  # the hub repository
    title: str  # for menus
    folders: tuple[str, ...]  # one SAE per folder, in block order
    megabytes: int  # of one SAE's weights file
    # s of "expected_average_only_in" per folder, as SAELens's pretrained_saes.yaml lists it
    norm_scaling_factors: tuple[float, ...] = ()


def _per_block(pattern: str, n: int = 12) -> tuple[str, ...]:
    return tuple(pattern.format(layer=layer) for layer in range(n))


# Public GPT-2 small SAEs in SAELens's folder layout (names from SAELens's
# pretrained_saes.yaml).
SAE_RELEASES = (
    SAERelease(
        "gpt2-small-res-jb",
        "jbloom/GPT2-Small-SAEs-Reformatted",
        "Residual stream before each block (Bloom, 24,576 features)",
        (*_per_block("blocks.{layer}.hook_resid_pre"), "blocks.11.hook_resid_post"),
        151,
    ),
    SAERelease(
        "gpt2-small-resid-mid-v5-32k",
        "jbloom/GPT2-Small-OAI-v5-32k-resid-mid-SAEs",
        "Residual stream after attention (OpenAI v5, TopK, 32,768 features)",
        _per_block("v5_32k_layer_{layer}"),
        201,
    ),
    SAERelease(
        "gpt2-small-attn-out-v5-32k",
        "jbloom/GPT2-Small-OAI-v5-32k-attn-out-SAEs",
        "Attention output (OpenAI v5, TopK, 32,768 features)",
        _per_block("v5_32k_layer_{layer}"),
        201,
    ),
    SAERelease(
        "gpt2-small-mlp-out-v5-32k",
        "jbloom/GPT2-Small-OAI-v5-32k-mlp-out-SAEs",
        "Feed-forward output (OpenAI v5, TopK, 32,768 features)",
        _per_block("v5_32k_layer_{layer}"),
        201,
    ),
    SAERelease(
        "gpt2-small-mlp-tm",
        "tommmcgrath/gpt2-small-mlp-out-saes",
        "Feed-forward output (McGrath, 24,576 features)",
        (
            "sae_group_gpt2_blocks.0.hook_mlp_out_24576:v1",
            *(f"sae_group_gpt2_blocks.{layer}.hook_mlp_out_24576:v0" for layer in range(1, 8)),
            "sae_group_gpt2_blocks.8.hook_mlp_out_24576:v1",
            "sae_group_gpt2_blocks.9.hook_mlp_out_24576:v0",
            "sae_group_gpt2_blocks.10.hook_mlp_out_24576:v0",
            "sae_group_gpt2_blocks.11.hook_mlp_out_24576:v2",
        ),
        151,
        (1.049317316132615, 2.3693984005104283, 1.6411934982190302, 1.8958522157897557,
         1.81673478700627, 1.550234472245924, 1.3237742807210804, 1.1042905114723296,
         0.9123762783479742, 0.6955335635232373, 0.3619728926727644, 0.2851548652550073),
    ),
)  # fmt: skip
_BY_NAME = {release.name: release for release in SAE_RELEASES}


@dataclass(frozen=True)
class HubSAE:
    repo_id: str
    folder: str  # the folder inside the repository that holds cfg.json and the weights

    @property
    def label(self) -> str:
        return f"{self.repo_id}:{self.folder}"

    @property
    def norm_scaling_factor(self) -> float | None:
        """s for this SAE where a built-in release lists it."""
        for release in SAE_RELEASES:
            known = release.repo_id == self.repo_id and release.norm_scaling_factors
            if known and self.folder in release.folders:
                return release.norm_scaling_factors[release.folders.index(self.folder)]
        return None


def parse_source(source: str) -> Path | HubSAE:
    """A folder that exists, else `REPO:FOLDER` (REPO a hub id or a release's name)."""
    if not source or not source.strip():
        raise SAEError("no SAE given: name a folder or REPO:FOLDER")
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    repo, sep, folder = source.partition(":")
    folder = folder.strip("/")
    if not sep or not folder or repo.count("/") > 1 or not (repo.count("/") or repo in _BY_NAME):
        raise SAEError(
            f"{source!r} is no folder here, nor REPO:FOLDER "
            "(e.g. jbloom/GPT2-Small-SAEs-Reformatted:blocks.8.hook_resid_pre)"
        )
    release = _BY_NAME.get(repo)
    return HubSAE(release.repo_id if release else repo, folder)


def cached_folder(sae: HubSAE) -> Path | None:
    """The SAE's folder in the Hugging Face cache when both its files are there (no
    network is touched), else None."""
    from huggingface_hub import try_to_load_from_cache

    paths = [try_to_load_from_cache(sae.repo_id, f"{sae.folder}/{name}") for name in SAE_FILES]
    if all(isinstance(p, str) for p in paths):
        return Path(paths[0]).parent
    return None


def download_sae(
    sae: HubSAE, progress: Progress | None = None, cancel: Callable[[], bool] | None = None
) -> Path:
    """The SAE's folder from the hub cache, else downloaded into it with progress."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    cached = cached_folder(sae)
    if cached is not None:
        return cached
    if progress is not None:
        progress(None, f"asking the Hugging Face hub for {sae.label}")
    try:
        why = hub_unreachable(sae.repo_id, f"{sae.folder}/{CFG_FILE}")
        if why is not None:
            raise SAEError(
                f"the SAE {sae.label} is not in the Hugging Face cache and the hub cannot be "
                f"reached ({why}). Download it where there is a network: hf download "
                f"{sae.repo_id} --include '{sae.folder}/*', then copy the cache "
                "(~/.cache/huggingface/hub) here, or give its folder (cfg.json + "
                "sae_weights.safetensors)"
            )
        bar = progress_bar_class(progress, cancel)
        paths = [
            hf_hub_download(sae.repo_id, f"{sae.folder}/{name}", tqdm_class=bar)
            for name in SAE_FILES
        ]
    except (Cancelled, SAEError):
        raise
    except RepositoryNotFoundError as exc:
        raise SAEError(f"the Hugging Face hub has no repository {sae.repo_id!r}") from exc
    except EntryNotFoundError as exc:
        raise SAEError(f"{sae.repo_id} has no SAE folder {sae.folder!r}") from exc
    except Exception as exc:  # offline, DNS, HTTP and cache errors all land here
        raise SAEError(
            f"could not download {sae.label} ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    return Path(paths[0]).parent
