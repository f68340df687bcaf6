"""Small plotting widgets the stage views share: a labelled plot of curves over named places
(tokens, or stages along depth) and a row of exclusive choice buttons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QWidget

from explorer.ui.widgets.axes import (
    LABEL_GAP_PX,
    SpacedAxis,
    fixed_plot,
    style_axes,
    thinned_ticks,
)

MARKER_PEN = pg.mkPen("#e8590c", width=2)  # the selected token, as in the heatmaps
MAX_SYMBOLS = 64  # beyond this many points, curves are drawn without dots
PLOT_MIN_HEIGHT = 150  # below this the axis labels pile up and the curves are flat lines


class LabelledPlot(pg.PlotWidget):
    """Curves over a row of named places (tokens, or stages along depth): white, labelled
    axes, the names as x ticks thinned to fit the width, a marker at the selected place.
    A click reports the nearest place."""

    placeClicked = Signal(int)

    def __init__(self, title: str, x_label: str, y_label: str, tick_every: int = 1, parent=None):
        super().__init__(parent, background="w", axisItems={"left": SpacedAxis("left")})
        self.tick_every = tick_every  # label every n-th place at least (n = 2: block outputs)
        self.setMinimumHeight(PLOT_MIN_HEIGHT)
        item = self.getPlotItem()
        fixed_plot(item)
        style_axes(item, bottom=x_label, left=y_label)
        item.showGrid(y=True, alpha=0.15)
        self.caption = title
        self.legend: list[str] = []  # one coloured HTML entry per curve, shown in the title
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.names: list[str] = []
        self.kept: tuple[int, ...] = ()  # places whose names always show (the marked one)
        self.marker = pg.InfiniteLine(angle=90, pen=MARKER_PEN)
        self.marker.setVisible(False)
        self.addItem(self.marker)
        self.set_title(title)
        self.scene().sigMouseClicked.connect(self._on_click)
        item.getViewBox().sigResized.connect(self._apply_ticks)  # re-thin the labels to fit

    def add_curve(self, key: str, name: str, color: str, style=Qt.PenStyle.SolidLine) -> None:
        pen = pg.mkPen(color, width=2, style=style)
        self.curves[key] = self.plot([], [], pen=pen, symbolBrush=color, symbolPen=None)
        # The legend sits in the title line: inside the plot it hides the curves.
        line = "━━" if style == Qt.PenStyle.SolidLine else "╍╍"
        self.legend.append(f"<span style='color:{color}'>{line}</span>&nbsp;{name}")
        self.set_title(self.caption)

    def set_title(self, title: str) -> None:
        self.caption = title
        # One curve needs no key: the title and the axis name it.
        legend = "&nbsp;&nbsp; ".join(self.legend) if len(self.legend) > 1 else ""
        text = f"{title}&nbsp;&nbsp;&nbsp; {legend}" if legend else title
        self.getPlotItem().setTitle(text, color="#222", size="9pt")

    def set_places(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._apply_ticks()
        self.setXRange(-0.5, len(self.names) - 0.5, padding=0.02)

    def set_curve(self, key: str, values: np.ndarray) -> None:
        symbol = "o" if len(values) <= MAX_SYMBOLS else None
        self.curves[key].setData(np.arange(len(values)), values, symbol=symbol, symbolSize=5)

    def set_marker(self, place: int | None, also: Sequence[int] = ()) -> None:
        """Mark `place`; its name, and those of the places `also`, always show."""
        self.marker.setVisible(place is not None)
        if place is not None:
            self.marker.setPos(place)
        self.kept = (*(() if place is None else (place,)), *also)
        self._apply_ticks()

    def _apply_ticks(self) -> None:
        """As many names as fit the width, evenly spread, the marked place always."""
        if not self.names:
            return
        axis = self.getPlotItem().getAxis("bottom")
        box = self.getPlotItem().getViewBox()
        metrics = QFontMetrics(axis.style.get("tickFont") or axis.font())
        per_label = max(metrics.horizontalAdvance(s) for s in self.names) + LABEL_GAP_PX
        if self.tick_every > 1:  # every n-th place and no other (block outputs)
            fit = int(np.ceil(len(self.names) * per_label / max(box.width(), 100.0)))
            stride = self.tick_every * max(1, int(np.ceil(fit / self.tick_every)))
            axis.setTicks([[(i, self.names[i]) for i in range(0, len(self.names), stride)]])
            return
        (x0, x1), _ = box.viewRange()  # places sit at 0, 1, …: cells from -0.5
        ticks = thinned_ticks(self.names, (x0 + 0.5, x1 + 0.5), box.width(), per_label, self.kept)
        axis.setTicks([[(x - 0.5, text) for x, text in ticks]])

    def _on_click(self, event) -> None:
        box = self.getPlotItem().getViewBox()
        if event.button() != Qt.MouseButton.LeftButton or not self.names:
            return
        if not box.sceneBoundingRect().contains(event.scenePos()):
            return
        place = int(round(box.mapSceneToView(event.scenePos()).x()))
        if 0 <= place < len(self.names):
            self.placeClicked.emit(place)


class ChoiceButtons(QWidget):
    """A row of exclusive toggle buttons after a caption; `chosen` is the checked key."""

    changed = Signal(str)

    def __init__(self, caption: str, choices: dict[str, str], chosen: str, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(caption))
        self.setStyleSheet(
            "QPushButton { padding: 3px 10px; }"
            "QPushButton:checked { background: #d0ebff; border: 1px solid #1c7ed6;"
            " border-radius: 3px; }"
        )
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QPushButton] = {}
        for key, text in choices.items():
            button = QPushButton(text)
            button.setCheckable(True)
            button.setChecked(key == chosen)
            button.toggled.connect(lambda on, key=key: self._toggled(key, on))
            self.group.addButton(button)
            self.buttons[key] = button
            layout.addWidget(button)
        layout.addStretch(1)

    def _toggled(self, key: str, on: bool) -> None:
        if on:  # the button being switched off also reports; one signal per change
            self.changed.emit(key)

    @property
    def chosen(self) -> str:
        return next(key for key, button in self.buttons.items() if button.isChecked())
