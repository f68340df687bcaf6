"""Exports of attention weights, shared by the window and the headless `export` command:
one head as PNG/SVG/CSV/NPY, a layer's heads as one grid image and one [H, T, T] .npy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from explorer.export.render import HeatmapFigure, save_figure
from gpt_core import ExportError, GPTConfig, Trace, stage_key
from gpt_core.util.files import PartialExport, write_all, write_matrix_csv, write_npy

FORMATS = ("png", "svg", "csv", "npy")
IMAGE_FORMATS = ("png", "svg")


def parse_formats(text: str | Iterable[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = [f.strip().lower().lstrip(".") for f in items if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(
            f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}"
        )
    return formats


def _short(prompt: str, limit: int = 60) -> str:
    one_line = " ".join(prompt.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _whole(what: str, prompt: str) -> str:
    """A figure's description for the file's metadata: the whole prompt, not the title's
    first 60 characters."""
    return f"{what} — the prompt: “{' '.join(prompt.split())}”"


def _what(trace: Trace) -> str:
    return " (with interventions)" if not trace.interventions.is_empty else ""


def head_figure(trace: Trace, layer: int, head: int, prompt: str) -> HeatmapFigure:
    labels = tuple(trace.position_labels)
    title = f"Layer {layer} · head {head}{_what(trace)} — “{_short(prompt)}”"
    return HeatmapFigure(trace.head_weights(layer, head), labels, labels, title)


def head_stem(layer: int, head: int) -> str:
    return f"attention_L{layer}_H{head}"


def export_head(
    trace: Trace, layer: int, head: int, folder: str | Path, formats: Sequence[str], prompt: str
) -> list[Path]:
    return write_all(_head_files(trace, layer, head, Path(folder), formats, prompt))


def _head_files(trace: Trace, layer: int, head: int, folder: Path, formats, prompt: str):
    """(path, writer) for each format of one head's export."""
    stem = head_stem(layer, head)
    figure = head_figure(trace, layer, head, prompt)
    matrix, rows, cols = figure.matrix, figure.row_labels, figure.col_labels
    about = _whole(f"Layer {layer} · head {head}{_what(trace)}", prompt)
    writers = {
        "png": lambda path: save_figure(path, [figure], description=about),
        "svg": lambda path: save_figure(path, [figure], description=about),
        "csv": lambda path: write_matrix_csv(path, matrix, rows, cols, corner="query \\ key"),
        "npy": lambda path: write_npy(path, matrix),
    }
    return [(folder / f"{stem}.{fmt}", writers[fmt]) for fmt in formats]


def export_layer(
    trace: Trace, layer: int, folder: str | Path, formats: Sequence[str], prompt: str
) -> list[Path]:
    """The layer's heads as one grid image (PNG/SVG) and all weights as one [H, T, T] .npy."""
    folder = Path(folder)
    n_heads = trace.config.n_heads
    labels = tuple(trace.position_labels)
    figures = [
        HeatmapFigure(trace.head_weights(layer, h), labels, labels, f"head {h}")
        for h in range(n_heads)
    ]
    title = f"Layer {layer} · all {n_heads} heads{_what(trace)} — “{_short(prompt)}”"
    about = _whole(f"Layer {layer} · all {n_heads} heads{_what(trace)}", prompt)
    columns = int(round(n_heads**0.5 + 0.49))
    label_axes = trace.n_tokens <= 24
    files = []
    for fmt in formats:
        if fmt in IMAGE_FORMATS:
            files.append(
                (
                    folder / f"attention_L{layer}_grid.{fmt}",
                    lambda path: save_figure(path, figures, title, columns, label_axes, about),
                )
            )
        elif fmt == "npy":
            weights = trace[stage_key("attn/weights", layer)]
            files.append((folder / f"attention_L{layer}.npy", lambda p, w=weights: write_npy(p, w)))
    return write_all(files)


def chosen_heads(
    cfg: GPTConfig, layers: Sequence[int] | None, heads: Sequence[int] | None
) -> tuple[list[int], list[int]]:
    """The layers and heads to export (all when None), checked to exist."""
    layers = list(range(cfg.n_layers)) if layers is None else list(layers)
    heads = list(range(cfg.n_heads)) if heads is None else list(heads)
    for layer in layers:
        if not 0 <= layer < cfg.n_layers:
            raise ExportError(f"layer {layer} does not exist: layers 0..{cfg.n_layers - 1}")
    for head in heads:
        if not 0 <= head < cfg.n_heads:
            raise ExportError(f"head {head} does not exist: heads 0..{cfg.n_heads - 1}")
    return layers, heads


def failure_text(exc: Exception) -> str:
    """A failed export, as a sentence: which files were written and which not."""
    if isinstance(exc, PartialExport):
        return f"{exc}."
    return f"{exc}. Nothing was written."


def export_attention(
    trace: Trace,
    folder: str | Path,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    formats: Sequence[str] = FORMATS,
    prompt: str = "",
) -> list[Path]:
    """Every chosen (layer, head): all layers and heads when none are given."""
    layers, heads = chosen_heads(trace.config, layers, heads)
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"cannot write to {folder}: no such folder")
    return write_all(
        file
        for layer in layers
        for head in heads
        for file in _head_files(trace, layer, head, folder, formats, prompt)
    )


def export_shown(session, request) -> list[Path]:
    """Write what an export request asks for of the run on screen (for a whole trace, the
    backward step's run when there is one); the paths written."""
    trace = session.trace
    if request.what == "trace" and session.gradients is not None:
        trace = session.gradients
    sel, prompt = session.selection, session.shown_text()
    folder = Path(request.folder)
    if request.what == "head":
        return export_head(trace, sel.layer, sel.head, folder, request.formats, prompt)
    if request.what == "layer":
        return export_layer(trace, sel.layer, folder, request.formats, prompt)
    return [trace.save(folder / (request.filename or "trace.npz"))]
