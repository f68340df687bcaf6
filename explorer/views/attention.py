"""Attention: the selected head large, the layer's heads as a grid of small heatmaps, and
a layers x heads overview. Heads can be switched off from the grid's check boxes or by
Ctrl+clicking them in the grid or the overview."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gpt_core.attention_stats import HEAD_METRICS

from ..steps import Step
from ..widgets.heatmap import Heatmap, colormap, value_levels
from .base import StageView

_OFF_PEN = pg.mkPen("#c92a2a", width=3)
_SELECTED_PEN = pg.mkPen("#e8590c", width=3)


def _ctrl_held() -> bool:
    return bool(QApplication.keyboardModifiers() & Qt.KeyboardModifier.ControlModifier)


class HeadGrid(pg.GraphicsLayoutWidget):
    """The layer's heads as small heatmaps on one colour scale; click one to open it."""

    headClicked = Signal(int)
    headToggled = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.boxes: list[pg.ViewBox] = []
        self.images: list[pg.ImageItem] = []
        self.titles: list[pg.LabelItem] = []
        self.frames: list[pg.QtWidgets.QGraphicsRectItem] = []
        self.scene().sigMouseClicked.connect(self._on_click)

    def _build(self, n_heads: int) -> None:
        self.clear()
        self.boxes, self.images, self.titles, self.frames = [], [], [], []
        columns = int(np.ceil(np.sqrt(n_heads)))
        for h in range(n_heads):
            r, c = divmod(h, columns)
            title = self.addLabel(f"H{h}", row=2 * r, col=c, size="8pt", color="#333")
            box = self.addViewBox(row=2 * r + 1, col=c, lockAspect=True, enableMouse=False)
            box.invertY(True)
            box.setMenuEnabled(False)
            image = pg.ImageItem(axisOrder="row-major")
            box.addItem(image)
            frame = pg.QtWidgets.QGraphicsRectItem()
            frame.setBrush(pg.mkBrush(None))
            box.addItem(frame)
            self.boxes.append(box)
            self.images.append(image)
            self.titles.append(title)
            self.frames.append(frame)

    def set_layer(self, weights: np.ndarray, selected: int, off: set[int]) -> None:
        """weights [H, T, T]; all heads on one colour scale, 0..max."""
        n_heads, T = weights.shape[0], weights.shape[-1]
        if len(self.images) != n_heads:
            self._build(n_heads)
        levels = value_levels(weights, signed=False)
        lut = colormap(False).getLookupTable(nPts=256)
        for h in range(n_heads):
            self.images[h].setImage(weights[h], levels=levels, lut=lut, autoLevels=False)
            self.images[h].setRect(0, 0, T, T)
            self.frames[h].setRect(0, 0, T, T)
            pen = _OFF_PEN if h in off else (_SELECTED_PEN if h == selected else pg.mkPen(None))
            self.frames[h].setPen(pen)
            label = f"H{h} · off" if h in off else f"H{h}"
            color = "#c92a2a" if h in off else ("#e8590c" if h == selected else "#333")
            self.titles[h].setText(label, color=color, size="8pt", bold=h == selected)
            self.boxes[h].setRange(xRange=(0, T), yRange=(0, T), padding=0.02)

    def head_at(self, scene_pos) -> int | None:
        for h, box in enumerate(self.boxes):
            if box.sceneBoundingRect().contains(scene_pos):
                return h
        return None

    def _on_click(self, event) -> None:
        head = self.head_at(event.scenePos())
        if head is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if _ctrl_held():
            self.headToggled.emit(head)
        else:
            self.headClicked.emit(head)


class AttentionView(StageView):
    kinds = ("attention",)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.heatmap = Heatmap()
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.heatmap.add_menu_action(
            "Export this head (PNG, SVG, CSV, NPY)…", lambda: self.exportRequested.emit("head")
        )
        self.heatmap.add_menu_action(
            "Export the layer's grid of heads…", lambda: self.exportRequested.emit("layer")
        )
        self.grid = HeadGrid()
        self.grid.headClicked.connect(self.session.select_head)
        self.grid.headToggled.connect(self._toggle_head)
        export_grid = pg.QtGui.QAction("Export the layer's grid of heads…", self.grid)
        export_grid.triggered.connect(lambda: self.exportRequested.emit("layer"))
        self.grid.addAction(export_grid)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.head_boxes: list[QCheckBox] = []
        self.head_box_row = QGridLayout()
        self.head_box_row.setSpacing(2)
        self.metric = QComboBox()
        for name, text in HEAD_METRICS.items():
            self.metric.addItem(text.split(":")[0].split(",")[0], name)
        self.metric.setToolTip("\n".join(HEAD_METRICS.values()))
        self.metric.currentIndexChanged.connect(lambda _: self._draw_overview())
        self.overview = Heatmap()
        self.overview.clicked.connect(self._overview_clicked)
        self._off_marks = pg.ScatterPlotItem(
            symbol="x", size=11, pen=pg.mkPen("#c92a2a", width=2), brush=None
        )
        self.overview.plot.addItem(self._off_marks)
        self._hovered_overview: tuple[int, int] | None = None
        self.overview.hovered.connect(lambda r, c: setattr(self, "_hovered_overview", (r, c)))
        self.overview.add_menu_action(
            "Switch the head under the pointer off / on", self._toggle_hovered_overview
        )

        grid_panel = QWidget()
        grid_layout = QVBoxLayout(grid_panel)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        self.grid_title = QLabel()
        grid_layout.addWidget(self.grid_title)
        grid_layout.addWidget(self.grid, 1)
        heads_on = QLabel("Heads on (untick to switch off; Ctrl+click works too):")
        heads_on.setStyleSheet("color:#495057;")
        grid_layout.addWidget(heads_on)
        grid_layout.addLayout(self.head_box_row)
        overview_panel = QWidget()
        overview_layout = QVBoxLayout(overview_panel)
        overview_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("All layers × heads:"))
        row.addWidget(self.metric, 1)
        overview_layout.addLayout(row)
        overview_layout.addWidget(self.overview, 1)
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(grid_panel)
        side.addWidget(overview_panel)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.heatmap)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self._layer = 0

    # --- drawing ---
    def draw(self, step: Step) -> None:
        trace, sel = self.trace, self.session.selection
        layer, head = step.layer, sel.head
        self._layer = layer
        labels = self.labels()
        off = set(self.session.interventions.heads_in(layer))
        weights = trace.head_weights(layer, head)
        state = " (switched off)" if head in off else ""
        self.heatmap.set_matrix(
            weights,
            labels,
            labels,
            signed=False,
            title=f"Layer {layer} · head {head}{state}",
            hover=lambda r, c, v: (
                f"query {r} “{trace.token_strings[r]}” → key {c} "
                f"“{trace.token_strings[c]}”: weight {v:.6f}"
            ),
        )
        self.heatmap.set_highlight_row(self.session.position)
        self.grid_title.setText(
            f"Layer {layer}: all {trace.config.n_heads} heads (click one to open it)"
        )
        self.grid.set_layer(trace[f"blocks/{layer}/attn/weights"], head, off)
        self._sync_head_boxes(trace.config.n_heads, off)
        self._draw_overview()

    def _draw_overview(self) -> None:
        result = self.session.result
        if result is None:
            return
        name = self.metric.currentData()
        values = result.head_stats[name]  # [L, H]
        n_layers, n_heads = values.shape
        self.overview.set_matrix(
            values,
            [f"L{i}" for i in range(n_layers)],
            [f"H{h}" for h in range(n_heads)],
            signed=False,
            title=HEAD_METRICS[name].split(",")[0],
            hover=lambda r, c, v: f"layer {r} · head {c}: {v:.4f} (Ctrl+click switches it off/on)",
        )
        self.overview.set_highlight_row(self._layer)
        off = sorted(self.session.interventions.ablate_heads)
        self._off_marks.setData([h + 0.5 for _, h in off], [layer + 0.5 for layer, _ in off])

    def _sync_head_boxes(self, n_heads: int, off: set[int]) -> None:
        if len(self.head_boxes) != n_heads:
            for box in self.head_boxes:
                box.deleteLater()
            self.head_boxes = []
            columns = 6 if n_heads > 16 else n_heads
            for h in range(n_heads):
                box = QCheckBox(str(h))
                box.toggled.connect(lambda checked, h=h: self._head_box_toggled(h, checked))
                self.head_boxes.append(box)
                self.head_box_row.addWidget(box, h // columns, h % columns)
        for h, box in enumerate(self.head_boxes):
            box.blockSignals(True)
            box.setChecked(h not in off)
            box.blockSignals(False)

    # --- switching heads ---
    def _head_box_toggled(self, head: int, checked: bool) -> None:
        off = head in self.session.interventions.heads_in(self._layer)
        if checked == off:  # the box disagrees with the session: toggle it
            self.session.toggle_head(self._layer, head)

    def _toggle_head(self, head: int) -> None:
        self.session.toggle_head(self._layer, head)

    def _overview_clicked(self, row: int, col: int) -> None:
        if _ctrl_held():
            self.session.toggle_head(row, col)
            return
        self.session.select_head(col)
        self.session.select_layer(row)

    def _toggle_hovered_overview(self) -> None:
        if self._hovered_overview is not None:
            self.session.toggle_head(*self._hovered_overview)
