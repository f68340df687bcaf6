"""The sampling distribution drawn: the most likely tokens' probability before (the plain
softmax) and after temperature, top-k and top-p as paired bars, the cut-offs as lines, and
a caption with the entropies and how many tokens remain possible; and the controls that
set temperature, top-k and top-p in the app state (they show the state, never hold it)."""

from __future__ import annotations

import html
from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from explorer.state.sampling import Draw, GenerationSettings
from explorer.ui.widgets.axes import PLOT_MIN_PX, keep_plot_room
from explorer.ui.widgets.layout import WrappingPanel, stack
from explorer.ui.widgets.tables import caption, heading
from explorer.ui.widgets.topk_chart import ProbabilityRows, short_probability
from gpt_core import SamplingDistribution

ROWS = 20  # tokens drawn, the most likely first
BEFORE_COLOR = "#adb5bd"
AFTER_COLOR = "#4c6ef5"
DRAWN_COLOR = "#f08c00"  # the token Generate drew
TOP_K_COLOR = "#c92a2a"
TOP_P_COLOR = "#862e9c"
LABEL_COLOR = "#222"
ROW_PX = 34  # a row: its label's line, then its two bars
# in row units, the row running from -0.5 (its top) to 0.5: the label's line, then the bars
BAR_HEIGHT = 0.22
BEFORE_Y, AFTER_Y = 0.11, 0.34  # the bars' centres


def shown_rows(distribution: SamplingDistribution, drawn_id: int | None) -> np.ndarray:
    """Ids of the ROWS most likely tokens (by logit, most likely first), and the drawn
    token after them when it is not among them."""
    before = distribution.before
    n = min(ROWS, before.size)
    top = np.argpartition(-before, n - 1)[:n]
    top = top[np.lexsort((top, -before[top]))]  # by probability, then id (ties as topk)
    if drawn_id is not None and drawn_id not in top:
        top = np.append(top, drawn_id)
    return top


class SamplingChart(ProbabilityRows):
    """A row per token: its label (token, probability before → after) on a line of its
    own above its two bars, so the bars take the chart's whole width (a narrow dock has no
    room for a column of labels beside them)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.getPlotItem().hideAxis("left")
        self.before = pg.BarGraphItem(x0=0, y=[], height=BAR_HEIGHT, width=[], brush=BEFORE_COLOR)
        self.after = pg.BarGraphItem(x0=0, y=[], height=BAR_HEIGHT, width=[], brush=AFTER_COLOR)
        self.addItem(self.before)
        self.addItem(self.after)
        # the two labels apart: both cuts may keep the same rows
        self.cuts = [self._cut_line(TOP_K_COLOR, 0.98), self._cut_line(TOP_P_COLOR, 0.55)]
        self.rows: np.ndarray = np.zeros(0, np.int64)  # the ids drawn, top row first
        self.labels: list[pg.TextItem] = []  # a row's label, reused from draw to draw

    def _cut_line(self, color: str, label_at: float) -> pg.InfiniteLine:
        pen = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine)
        options = {"position": label_at, "anchors": [(1, 1), (1, 1)], "color": color}
        line = pg.InfiniteLine(angle=0, pen=pen, movable=False, label="", labelOpts=options)
        self.addItem(line)
        return line

    def set_distribution(
        self, distribution: SamplingDistribution, tokens: list[str], rows: np.ndarray, drawn
    ) -> None:
        """Bars of `rows` (ids, most likely first) with their display strings `tokens`."""
        self.rows = rows
        before, after = distribution.before[rows], distribution.probs[rows]
        y = np.arange(rows.size)
        brushes = [DRAWN_COLOR if i == drawn else AFTER_COLOR for i in rows]
        self.before.setOpts(y=y + BEFORE_Y, width=before)
        self.after.setOpts(y=y + AFTER_Y, width=after, brushes=brushes, pen=None)
        # The numbers beside each token: with a peaked "after", the "before" bars of a flat
        # distribution are too short to read.
        self.set_labels(
            f"{'★ ' if i == drawn else ''}{t}  {short_probability(b)} → {short_probability(a)}"
            for i, t, b, a in zip(rows, tokens, before, after, strict=True)
        )
        self.min_plot_px = (PLOT_MIN_PX[0], max(PLOT_MIN_PX[1], ROW_PX * rows.size))
        keep_plot_room(self.getPlotItem())
        top = float(max(before.max(initial=0), after.max(initial=0))) or 1.0
        middle = float(f"{top / 2:.1g}")
        self.getAxis("bottom").setTicks([[(0, "0"), (middle, f"{middle:g}")]])
        self.setRange(xRange=(0, top * 1.05), yRange=(-0.5, rows.size - 0.5), padding=0)
        self._place_cuts(distribution, rows.size)

    def set_labels(self, texts) -> None:
        """One label per row, at the row's top left (none: no rows)."""
        texts = list(texts)
        while len(self.labels) < len(texts):
            label = pg.TextItem(color=LABEL_COLOR, anchor=(0, 0))
            self.addItem(label)
            self.labels.append(label)
        for row, label in enumerate(self.labels):
            label.setVisible(row < len(texts))
            if row < len(texts):
                label.setText(texts[row])
                label.setPos(0, row - 0.5)

    def _place_cuts(self, distribution: SamplingDistribution, n_rows: int) -> None:
        """A line under the last row each cut keeps, when that row is drawn."""
        greedy = distribution.greedy
        kept = (
            None if greedy or distribution.top_k is None else distribution.top_k_kept,
            None if greedy else distribution.nucleus_size,
        )
        names = (f"top-k {distribution.top_k}", f"top-p {distribution.top_p}")
        for line, count, name in zip(self.cuts, kept, names, strict=True):
            shown = count is not None and count <= min(n_rows, ROWS)
            line.setVisible(shown)
            if shown:
                line.setPos(count - 0.5)
                line.label.setFormat(f"{name} cut")


def describe(distribution: SamplingDistribution, vocab: int) -> str:
    """What the bars show, the cut-offs and the entropies, as rich text."""
    d = distribution
    before = (
        "<span style='color:#868e96'>■</span> before: softmax of the plain logits "
        "(temperature 1, no cut)"
    )
    if d.greedy:
        return (
            f"{before} · <span style='color:{AFTER_COLOR}'>■</span> after: <b>temperature 0 "
            "is greedy</b>: the most likely token gets probability 1 and top-k and top-p do "
            f"nothing.<br>Entropy {d.entropy_before:.3f} → 0 nats · 1 of {vocab:,} tokens "
            "possible."
        )
    steps = [f"÷ temperature {d.temperature:g}"]
    if d.top_k is not None:
        steps.append(
            f"<span style='color:{TOP_K_COLOR}'>top-k {d.top_k}</span> (logit ≥ "
            f"{d.kth_logit:.4g}: {d.top_k_kept:,} kept)"
        )
    if d.top_p is not None:
        steps.append(
            f"<span style='color:{TOP_P_COLOR}'>top-p {d.top_p:g}</span> (the smallest set "
            f"whose probability reaches p: {d.nucleus_size:,} tokens)"
        )
    return (
        f"{before} · <span style='color:{AFTER_COLOR}'>■</span> after: "
        + " → ".join([*steps, "softmax"])
        + f".<br>Entropy {d.entropy_before:.3f} → {d.entropy_after:.3f} nats · "
        f"<b>{d.possible:,}</b> of {vocab:,} tokens possible."
    )


def describe_drawn(drawn: Draw, distribution: SamplingDistribution, token: str) -> str:
    """The token Generate drew from this position, and with what."""
    s, now = drawn.settings, distribution
    text = (
        f"<span style='color:{DRAWN_COLOR}'>★ “{html.escape(token)}”</span> was drawn here "
        f"by Generate, at p = {drawn.probability:.4g}"
    )
    same = (s.temperature, s.top_k, s.top_p) == (now.temperature, now.top_k, now.top_p)
    if not same:
        text += f" with {settings_text(s)}; the bars show the settings now"
    return text + "."


def settings_text(s: GenerationSettings) -> str:
    if s.temperature == 0:
        return "temperature 0 (greedy)"
    k = "all" if s.top_k is None else s.top_k
    p = 1 if s.top_p is None else s.top_p
    return f"temperature {s.temperature:g}, top-k {k}, top-p {p:g}"


class SamplingPanel(WrappingPanel):
    """A title, the caption and the chart of one position's sampling distribution (the
    caption's wrapped lines never squeeze the chart's rows)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = heading()
        self.text = caption(rich=True)
        self.chart = SamplingChart()
        stack(self.title, self.text, self.chart, owner=self, spacing=2)

    def show_distribution(
        self, title: str, distribution: SamplingDistribution, tokenizer, drawn: Draw | None
    ) -> None:
        drawn_id = None if drawn is None else drawn.token_id
        rows = shown_rows(distribution, drawn_id)
        tokens = tokenizer.displays(rows.tolist())
        self.title.setText(title)
        text = describe(distribution, distribution.before.size)
        if drawn is not None:
            token = tokenizer.display(drawn.token_id)
            text += "<br>" + describe_drawn(drawn, distribution, token)
        self.text.setText(text)
        self.chart.set_distribution(distribution, tokens, rows, drawn_id)

    def show_message(self, title: str, message: str) -> None:
        self.title.setText(title)
        self.text.setText(html.escape(message))
        empty = np.zeros(0)
        self.chart.before.setOpts(y=empty, width=empty)
        self.chart.after.setOpts(y=empty, width=empty, brushes=[])
        self.chart.set_labels([])
        for line in self.chart.cuts:
            line.hide()


class SamplingControls(QWidget):
    """Temperature, top-k and top-p: they show the state's settings and send changes to the
    session; the views redraw when the state changes."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=5.0, singleStep=0.1)
        self.temperature.setSpecialValueText("0 (greedy)")
        self.top_k = QSpinBox(minimum=0, maximum=50257)
        self.top_k.setSpecialValueText("all")
        self.top_p = QDoubleSpinBox(minimum=0.01, maximum=1.0, singleStep=0.05, value=1.0)
        self.top_p.setToolTip("keep the smallest set of tokens whose probability reaches p; 1: all")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        self._show()
        for box in (self.temperature, self.top_k, self.top_p):
            box.valueChanged.connect(self._push)
        session.samplingChanged.connect(self._show)

    def _push(self) -> None:
        p = self.top_p.value()
        self.session.set_generation(
            replace(
                self.session.state.generation,
                temperature=self.temperature.value(),
                top_k=self.top_k.value() or None,
                top_p=None if p >= 1 else p,
            )
        )

    def _show(self) -> None:
        s = self.session.state.generation
        values = ((self.temperature, s.temperature), (self.top_k, s.top_k or 0))
        for box, value in (*values, (self.top_p, 1.0 if s.top_p is None else s.top_p)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        sampling = s.temperature > 0  # greedy ignores the cuts
        self.top_k.setEnabled(sampling)
        self.top_p.setEnabled(sampling)
