"""Attention, step by step: one query position t and one key position s of the selected head,
from LayerNorm 1's output to the attention output, on the run's own numbers.

The head's scaled scores before the softmax (masked cells grey, a diverging scale) beside
its weights after it, row t highlighted and cell (t, s) framed in both; a click on either
picks (t, s); ↑/↓ move t and Shift+←/→ move s. Then the six steps (PairSteps): to the
right of the heatmaps on a wide view, below them on a narrow one.
The heatmaps redraw when the head, block or trace changes; a new t or s redraws the steps
only, so that a click stays fast at T = 1,024.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QBoxLayout, QComboBox, QHBoxLayout, QLabel

from explorer.ui.views.attention import LOG_FROM_TOKENS
from explorer.ui.views.attention_pair_steps import PairSteps, num
from explorer.ui.views.base import StageView
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.layout import scrolled, stack
from gpt_core.analysis import AttentionPair, attention_pair, default_key
from gpt_core.probe.sections import Section

HEATMAP_MIN_PX = 160  # each of the two heatmaps: the floor for a plot is 150
NARROW_MAPS_PX = 560  # the head picker and the heatmaps one above the other, above the steps
QT_MAX_SIZE = (1 << 24) - 1  # Qt's QWIDGETSIZE_MAX: no maximum
LEFT_MIN_PX = 240
# Narrower or lower: the heatmaps above the steps, scrolled with them (beside the steps they
# would get under their least readable size).
BESIDE_FROM = QSize(900, 560)
WINDOW = Qt.ShortcutContext.WindowShortcut
# key, (change of t, change of s)
MOVES = {"Up": (-1, 0), "Down": (1, 0), "Shift+Left": (0, -1), "Shift+Right": (0, 1)}


class AttentionStepsView(StageView):
    name = "attention_steps"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.head_picker = QComboBox()
        self.head_picker.setToolTip("The head explained (the same head the Attention view shows)")
        self.scores = Heatmap()
        self.weights = Heatmap()
        for heatmap in (self.scores, self.weights):
            heatmap.setMinimumSize(LEFT_MIN_PX, HEATMAP_MIN_PX)
            heatmap.setToolTip("Click a cell: row t (the query), column s (the key)")
        self.steps = PairSteps()
        self.pair: AttentionPair | None = None  # the pair on show
        self._layer = 0
        self.wide: bool | None = None  # heatmaps beside the steps (else above them)
        self._lay_out()
        self._wire()

    def _lay_out(self) -> None:
        keys = QLabel("click a cell · ↑ ↓ t · Shift+← → s")
        keys.setStyleSheet("color: #495057;")
        picker_row = QHBoxLayout()
        picker_row.addWidget(QLabel("Head"))
        picker_row.addWidget(self.head_picker)
        picker_row.addWidget(keys, 1)
        self.maps_row = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.maps_row.addWidget(self.scores)
        self.maps_row.addWidget(self.weights)
        self.maps = stack(picker_row, self.maps_row, spacing=2)
        self.column = stack(self.steps)
        self.steps_area = scrolled(self.column)
        self.steps_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.addWidget(self.steps_area, 3)
        self._arrange(wide=True)

    def sizeHint(self) -> QSize:
        # Ask for the least room: the steps scroll on their own, and the stage panel lays
        # its page out at the page's preferred height (the heatmaps' 480 px each), which
        # would push the lower heatmap below the window.
        return self.minimumSizeHint()

    def resizeEvent(self, event) -> None:
        size = event.size()
        wide = size.width() >= BESIDE_FROM.width() and size.height() >= BESIDE_FROM.height()
        if wide != self.wide:
            self._arrange(wide)
        super().resizeEvent(event)

    def _arrange(self, wide: bool) -> None:
        """Wide: the heatmaps in a column left of the steps, which scroll on their own.
        Narrow: above the steps, scrolling with them (side by side they would be squeezed
        below their least readable width)."""
        self.wide = wide
        if wide:
            self.column.layout().removeWidget(self.maps)
            self.row.insertWidget(0, self.maps, 2)
        else:
            self.row.removeWidget(self.maps)
            self.column.layout().insertWidget(0, self.maps)
        if wide:
            self.maps.setMinimumHeight(0)
            self.maps.setMaximumHeight(QT_MAX_SIZE)
        else:  # a fixed strip: else the heatmaps take a share of the steps' whole height
            self.maps.setFixedHeight(NARROW_MAPS_PX)

    def _wire(self) -> None:
        session = self.session
        for heatmap in (self.scores, self.weights):
            heatmap.clicked.connect(session.select_pair)
        self.steps.keyClicked.connect(lambda key: session.select_pair(session.position, key))
        self.head_picker.activated.connect(session.select_head)
        session.out_proj.ready.connect(self._out_proj_ready)
        for keys, (dt, ds) in MOVES.items():
            # Window-wide but only while this view is visible, as Qt checks the parent.
            shortcut = QShortcut(QKeySequence(keys), self, context=WINDOW)
            shortcut.activated.connect(lambda dt=dt, ds=ds: self.move_pair(dt, ds))

    # --- drawing ---
    def draw(self, section: Section) -> None:
        self._layer = section.layer
        self.steps.set_run(self.trace, section.layer)
        self.show_switches()
        self.show_head()

    def show_head(self) -> None:
        """The selected head's scores and weights (the slow part at T = 1,024), then its pair."""
        trace, layer, head = self.trace, self._layer, self.session.selection.head
        labels = self.labels()
        self.head_picker.setCurrentIndex(head)

        def hover(what: str):
            return lambda r, c, v: (
                f"t = {labels[r]} → s = {labels[c]}: {what} {num(v)}"
                + (" (masked)" if v == -np.inf else "")
            )

        self.scores.set_matrix(
            trace.head_scores(layer, head),
            labels,
            labels,
            signed=True,
            masked=True,
            title=f"Head {head}: scores q·k/√d",
            hover=hover("score"),
        )
        # Past LOG_FROM_TOKENS most weights are near 1/T: dark on a linear scale.
        log = trace.n_tokens >= LOG_FROM_TOKENS
        self.weights.colour_scale = "log" if log else None
        self.weights.set_matrix(
            trace.head_weights(layer, head),
            labels,
            labels,
            signed=False,
            title=f"Head {head}: weights, softmax of each row" + (" · log₁₀" if log else ""),
            hover=hover("weight"),
        )
        self.show_position()

    def show_position(self) -> None:
        """Row t or key s changed: the marks and the six steps, not the heatmaps."""
        trace, session = self.trace, self.session
        head, t = session.selection.head, session.position
        s = self.key_position()
        arrays = session.out_proj.arrays(self._layer)
        self.pair = attention_pair(trace, self._layer, head, t, s, *(arrays or ()))
        mode = session.interventions.mode
        self.steps.show_pair(self.pair, trace, mode, out_proj_ready=arrays is not None)
        for heatmap in (self.scores, self.weights):
            heatmap.set_highlight_row(t)
            heatmap.mark_cell((t, s))

    show_key = show_position

    def key_position(self) -> int:
        """The chosen key, else the one the head weights most from row t."""
        chosen = self.session.state.key_position
        if chosen is not None:
            return chosen
        return default_key(
            self.trace, self._layer, self.session.selection.head, self.session.position
        )

    def show_switches(self) -> None:
        """The picker names the heads switched off (the numbers change with the new run)."""
        off = set(self.trace.interventions.heads_in(self._layer))  # the run's, as its numbers
        n_heads = self.trace.config.n_heads
        names = [f"{h} · switched off" if h in off else str(h) for h in range(n_heads)]
        if [self.head_picker.itemText(i) for i in range(self.head_picker.count())] != names:
            self.head_picker.blockSignals(True)
            self.head_picker.clear()
            self.head_picker.addItems(names)
            self.head_picker.setCurrentIndex(self.session.selection.head)
            self.head_picker.blockSignals(False)

    def show_part(self, part: str) -> None:
        """Scroll step `part` ("1" .. "6") to the top of the steps, once they are laid out."""
        if part.isdigit() and 1 <= int(part) <= len(self.steps.panels):
            panel = self.steps.panels[int(part) - 1]
            QTimer.singleShot(0, lambda: self._scroll_to(panel))

    def _scroll_to(self, panel) -> None:
        top = panel.mapTo(self.column, QPoint(0, 0)).y()
        self.steps_area.verticalScrollBar().setValue(top)

    def _out_proj_ready(self) -> None:
        if self.isVisible() and self.trace is not None:
            self.show_position()

    # --- keys ---
    def move_pair(self, dt: int, ds: int) -> None:
        """Move t by dt and s by ds, within the prompt."""
        if self.trace is None:
            return
        last = self.trace.n_tokens - 1
        t = min(max(self.session.position + dt, 0), last)
        s = self.session.state.key_position
        if ds:
            s = min(max(self.key_position() + ds, 0), last)
        self.session.select_pair(t, s)
