"""The Sub-layer lens tab: the residual stream of the run on screen read through the final LayerNorm
and the output head at every sub-layer (rows: the embeddings, then each block after
attention and after its feed-forward) and every position (columns). Each cell names the
top-1 token and is coloured by the chosen quantity; hovering shows the top five. The
visible columns are read first and the rest stream in; ablated runs get their own lens."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QScrollBar,
    QWidget,
)

from explorer.export.colour_maps import value_levels
from explorer.session.session import Session
from explorer.state.analysis import (
    SUBLAYER_LENS_QUANTITIES,
    SublayerLensGrid,
    current_sublayer_lens,
)
from explorer.ui.widgets.cell_text import CellText
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.layout import stack
from explorer.ui.widgets.tables import caption
from explorer.ui.widgets.token_picker import TokenPicker
from gpt_core.probe.stages import residual_stream

CELL_PX = 60  # width of a column: room for a short token
FRAME_PX = 90  # the heatmap's title, axis and hover line around its cells
LIGHT_BELOW = 0.55  # cells darker than this fraction of the scale get white text


class SublayerLensView(QWidget):
    openInStage = Signal()  # a cell asked to be opened in the Stage view
    job_kind = "sublayer_lens"  # the job showing the tab starts (a key of JOB_KINDS)
    run_button = None

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.quantity = QComboBox()
        for name, text in SUBLAYER_LENS_QUANTITIES.items():
            self.quantity.addItem(text, name)
        self.target = TokenPicker(session.tokenizer, "the target")
        self.status = caption()
        self.grid = Heatmap()
        self.cell_text = CellText()
        self.grid.plot.addItem(self.cell_text)
        self.scroll = QScrollBar(Qt.Orientation.Horizontal)
        self._start = 0  # first position in view
        self._hovered: tuple[int, int] | None = None
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Colour:"))
        controls.addWidget(self.quantity)
        controls.addWidget(QLabel("Target (for its rank):"))
        controls.addWidget(self.target)
        controls.addStretch(1)
        # Rows never shrink below their text: a deep model scrolls down instead.
        rows = QScrollArea()
        rows.setWidgetResizable(True)
        rows.setFrameShape(QScrollArea.Shape.NoFrame)
        rows.setWidget(self.grid)
        stack(controls, self.status, (rows, 1), self.scroll, owner=self)
        self.quantity.currentIndexChanged.connect(lambda _: self.refresh())
        self.target.tokenChanged.connect(session.sublayer_lens.set_target)
        self.scroll.valueChanged.connect(self._scrolled)
        self.grid.plot.getViewBox().sigResized.connect(self.refresh)
        self.grid.hovered.connect(lambda row, col: setattr(self, "_hovered", (row, col)))
        self.grid.clicked.connect(lambda row, col: session.select_position(self._start + col))
        self.grid.add_menu_action("Open this point in the Stage view", self._open_hovered)
        session.sublayerLensChanged.connect(self.refresh)
        session.positionChanged.connect(self._offer_targets)

    # --- what is shown ---
    def visible_positions(self) -> range:
        trace = self.session.trace
        if trace is None:
            return range(0)
        width = self.grid.plot.getViewBox().width()
        count = max(1, min(trace.n_tokens, int(width // CELL_PX)))
        self._start = min(self._start, trace.n_tokens - count)
        return range(self._start, self._start + count)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._offer_targets()
        self.refresh()

    def hideEvent(self, event) -> None:
        # The columns read so far are kept; the rest waits until the grid is shown again,
        # so a backward step or an attribution asked for meanwhile does not queue behind it.
        super().hideEvent(event)
        self.session.cancel("sublayer_lens")

    def refresh(self) -> None:
        """Draw the visible columns of the grid and ask for what is not read yet."""
        trace = self.session.trace
        if not self.isVisible():
            return
        self.grid.setVisible(trace is not None)  # before a run there is no grid to draw
        if trace is None:
            self.status.setText("Run a prompt to read its lens.")
            self.scroll.setVisible(False)
            return
        visible = self.visible_positions()
        self.scroll.setRange(0, trace.n_tokens - len(visible))
        self.scroll.setPageStep(len(visible))
        self.scroll.setVisible(len(visible) < trace.n_tokens)
        points = 2 * trace.config.n_layers + 1
        self.grid.setMinimumHeight(points * (self.cell_text.row_px + 4) + FRAME_PX)
        grid = current_sublayer_lens(self.session.state)
        if grid is not None:
            self._draw(grid, visible)
        if grid is None or not grid.complete:
            self.status.setText(f"Reading the lens at {trace.n_tokens} positions…")
            self.session.sublayer_lens.request(visible)

    def _draw(self, grid: SublayerLensGrid, visible: range) -> None:
        name = self.quantity.currentData()
        columns = slice(visible.start, visible.stop)
        whole = _colour_values(grid, name)  # [P, T]
        values = whole[:, columns]  # [P, W]
        labels = self.session.trace.position_labels[columns]
        read = int(grid.read.sum())
        scale = " (colour: log10(1 + rank))" if name == "target_rank" else ""
        quantity = SUBLAYER_LENS_QUANTITIES[name]
        title = f"{quantity}{scale} · positions {visible.start}–{visible.stop - 1}"
        missing = "not read yet"
        if name == "target_rank" and grid.target is None:
            missing = "no target chosen"
        self.grid.set_matrix(values, grid.labels, labels, title=title, signed=False,
                             hover=self._describe, missing=missing)  # fmt: skip
        levels = value_levels(whole, signed=False)  # the whole grid's scale: scrolling keeps it
        self.grid.image.setLevels(levels)
        self.grid.colorbar.setLevels(levels)
        top1 = grid.topk_ids[:, columns, 0]  # [P, W]
        self.cell_text.set_texts(self._token_texts(top1), _light(values, levels))
        done = "" if grid.complete else f" · {read} of {len(grid.read)} positions read…"
        self.status.setText(
            f"Row: where the stream is read · column: the position · cell: top-1 token{done}"
        )

    def _token_texts(self, ids: np.ndarray) -> list[list[str]]:
        displays = dict(zip(*self._displays(np.unique(ids[ids >= 0])), strict=True))
        return [[displays.get(int(i), "…") for i in row] for row in ids]

    def _displays(self, ids: np.ndarray) -> tuple[list[int], list[str]]:
        return ids.tolist(), self.session.tokenizer.displays(ids.tolist())

    def _describe(self, row: int, col: int, value: float) -> str:
        grid = current_sublayer_lens(self.session.state)
        position = self._start + col
        if grid is None or not grid.read[position]:
            return "not read yet"
        ids, probs = grid.topk_ids[row, position], grid.topk_probs[row, position]
        top = ", ".join(
            f"{label} {p:.3f}"
            for label, p in zip(self.session.tokenizer.displays(ids.tolist()), probs, strict=True)
        )
        label = self.session.trace.position_labels[position]
        rank = grid.target_rank[row, position]
        rank_text = "" if np.isnan(rank) else f" · target rank {int(rank)}"
        return (
            f"{grid.labels[row]} × {label} · top 5: {top} · entropy "
            f"{grid.entropy[row, position]:.3f} · KL {grid.kl[row, position]:.4f}{rank_text}"
        )

    # --- controls ---
    def _scrolled(self, value: int) -> None:
        self._start = value
        self.refresh()

    def _offer_targets(self) -> None:
        """The target picker offers the model's likely next tokens at the selected position."""
        trace = self.session.trace
        if trace is None or not self.isVisible():
            return
        position = self.session.position
        ids = trace["logits/topk_ids"][position].tolist()
        probs = trace["logits/topk_probs"][position].tolist()
        chosen = self.session.state.sublayer_lens_target
        self.target.set_candidates(ids, self.session.tokenizer.displays(ids), probs)
        if chosen is not None and chosen in ids:
            self.target.setCurrentIndex(ids.index(chosen))

    def _open_hovered(self) -> None:
        if self._hovered is None or self.session.trace is None:
            return
        row, col = self._hovered
        key = residual_stream(self.session.config.n_layers)[row][0]
        self.session.select_position(self._start + col)
        self.session.open_stage(key)
        self.openInStage.emit()


def _colour_values(grid: SublayerLensGrid, name: str) -> np.ndarray:
    """What the colours show: ranks on a log scale (0 and 5 differ more than 5000 and
    5005), the other quantities as they are."""
    values = grid.quantity(name)
    return np.log10(1 + values) if name == "target_rank" else values


def _light(values: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    low, high = levels
    fraction = (np.nan_to_num(values, nan=low) - low) / (high - low or 1.0)
    return fraction < LIGHT_BELOW
