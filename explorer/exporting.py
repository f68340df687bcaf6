"""Exports of attention weights, shared by the window and the headless `export` command:
one head as PNG/SVG/CSV/NPY, a layer's heads as one grid image and one [H, T, T] .npy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from gpt_core import ExportError, Trace, stage_key
from gpt_core.util.files import write_matrix_csv, write_npy

from .export_render import HeatmapFigure, save_figure

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
    folder = Path(folder)
    stem = head_stem(layer, head)
    figure = head_figure(trace, layer, head, prompt)
    written = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        if fmt in IMAGE_FORMATS:
            written.append(save_figure(path, [figure]))
        elif fmt == "csv":
            written.append(
                write_matrix_csv(
                    path, figure.matrix, figure.row_labels, figure.col_labels, corner="query \\ key"
                )
            )
        elif fmt == "npy":
            written.append(write_npy(path, figure.matrix))
    return written


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
    columns = int(round(n_heads**0.5 + 0.49))
    written = []
    for fmt in formats:
        if fmt in IMAGE_FORMATS:
            path = folder / f"attention_L{layer}_grid.{fmt}"
            written.append(
                save_figure(path, figures, title, columns, label_axes=trace.n_tokens <= 24)
            )
        elif fmt == "npy":
            path = folder / f"attention_L{layer}.npy"
            written.append(write_npy(path, trace[stage_key("attn/weights", layer)]))
    return written


def export_attention(
    trace: Trace,
    folder: str | Path,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    formats: Sequence[str] = FORMATS,
    prompt: str = "",
) -> list[Path]:
    """Every chosen (layer, head): all layers and heads when none are given."""
    cfg = trace.config
    layers = list(range(cfg.n_layers)) if layers is None else list(layers)
    heads = list(range(cfg.n_heads)) if heads is None else list(heads)
    for layer in layers:
        if not 0 <= layer < cfg.n_layers:
            raise ExportError(f"layer {layer} does not exist: layers 0..{cfg.n_layers - 1}")
    for head in heads:
        if not 0 <= head < cfg.n_heads:
            raise ExportError(f"head {head} does not exist: heads 0..{cfg.n_heads - 1}")
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"cannot write to {folder}: no such folder")
    written = []
    for layer in layers:
        for head in heads:
            written += export_head(trace, layer, head, folder, formats, prompt)
    return written
