"""A sparse-autoencoder feature's card: its activation on every token (a strip), the tokens
its decoder direction pushes up and down through the output head, its density on the
prompt, its top contexts in a scanned corpus, and its switches (off, or pushed by α typed
or dragged). It draws what it is given and says what was asked; the tab does the rest."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTextBrowser,
    QWidget,
)

from explorer.ui.widgets.layout import HORIZONTAL, VERTICAL, splitter, stack
from explorer.ui.widgets.tables import NumberItem, caption, heading, read_only_table
from explorer.ui.widgets.token_strip import TokenStrip, scrolled

ALPHA_LIMIT = 50.0  # the slider's reach either way; the box takes any α up to ±1e6
SLIDER_STEPS = 100  # slider steps per ALPHA_LIMIT
CONTEXT_BEFORE, CONTEXT_AFTER = 24, 8  # tokens of a top window shown around its token
HIGHLIGHT = "#ffd43b"


@dataclass(frozen=True)
class TopContext:
    activation: float
    tokens: Sequence[str]  # the window's tokens, as text
    position: int  # the token the feature fired on


class FeatureCardWidget(QWidget):
    ablateToggled = Signal(int)  # feature
    steerChanged = Signal(int, float)  # feature, α (0: stop pushing)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.feature: int | None = None
        self.title = heading()
        self.density = caption()
        self.strip = TokenStrip()
        self.up = read_only_table(["pushes up", "value"])
        self.down = read_only_table(["pushes down", "value"])
        self.off = QCheckBox("Switch off")
        self.off.setToolTip("Remove its contribution (activation × its decoder row) everywhere")
        self.off.clicked.connect(lambda: self._ask(self.ablateToggled.emit))
        self.alpha = QDoubleSpinBox()
        self.alpha.setRange(-1e6, 1e6)
        self.alpha.setDecimals(2)
        self.alpha.setSingleStep(0.5)
        self.alpha.setToolTip("Add α × its decoder row at every position (0: none)")
        self.alpha.editingFinished.connect(self._alpha_typed)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(-SLIDER_STEPS, SLIDER_STEPS)
        self.slider.setToolTip(f"Drag to push it by α in −{ALPHA_LIMIT:g}..{ALPHA_LIMIT:g}")
        self.slider.sliderMoved.connect(
            lambda step: self.alpha.setValue(step * ALPHA_LIMIT / SLIDER_STEPS)
        )
        self.slider.sliderReleased.connect(self._alpha_typed)
        self.contexts = QTextBrowser()
        self.contexts.setOpenLinks(False)
        switches = QHBoxLayout()
        switches.addWidget(self.off)
        switches.addSpacing(12)
        switches.addWidget(QLabel("Push by α"))
        switches.addWidget(self.alpha)
        switches.addWidget(self.slider, 1)
        for table in (self.up, self.down):
            table.verticalHeader().setVisible(False)
            table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
            table.setMinimumHeight(90)
        self.contexts.setMinimumHeight(90)
        contexts = stack(heading_text("Top contexts in the corpus"), self.contexts)
        lower = splitter(VERTICAL, splitter(HORIZONTAL, self.up, self.down), contexts,
                         stretch=(1, 1))  # fmt: skip
        strip = scrolled(self.strip, max_height=80)
        stack(self.title, self.density, (strip, 0), switches, lower, owner=self)
        self.show_feature(None)

    def _ask(self, emit: Callable[..., None], *args) -> None:
        if self.feature is not None:
            emit(self.feature, *args)

    def _alpha_typed(self) -> None:
        self._ask(self.steerChanged.emit, float(self.alpha.value()))

    def show_feature(self, feature: int | None) -> None:
        """Which feature the card is of (None: none; the card says how to open one)."""
        self.feature = feature
        self.setEnabled(feature is not None)
        if feature is not None:
            self.title.setText(f"Feature {feature:,}")
        else:
            self.title.setText("Click a feature in the heatmap or the table to open its card.")
            self.density.setText("")
            self.strip.set_tokens([], [], [])
            for table in (self.up, self.down):
                table.setRowCount(0)
            self.contexts.clear()

    def show_acts(self, tokens, ids, token_bytes, acts: np.ndarray, density: float) -> None:
        """Its activation on every token of the prompt, and its density there."""
        active = int(np.count_nonzero(acts))
        self.density.setText(
            f"Active on {active} of {len(acts)} tokens (density {density:.1%}) · "
            f"largest activation {float(acts.max(initial=0.0)):.3f}"
        )
        self.strip.set_tokens(tokens, ids, token_bytes)
        self.strip.set_weights(acts)

    def show_switches(self, ablated: bool, alpha: float) -> None:
        self.off.setChecked(ablated)
        self.alpha.setValue(alpha)
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(np.clip(alpha / ALPHA_LIMIT, -1, 1) * SLIDER_STEPS)))
        self.slider.blockSignals(False)

    def show_logits(self, up, down) -> None:
        """(token id, token, value) rows, each way."""
        for table, rows in ((self.up, up), (self.down, down)):
            table.setRowCount(len(rows))
            for r, (_, token, value) in enumerate(rows):
                table.setItem(r, 0, NumberItem(0, token))
                table.item(r, 0).setTextAlignment(Qt.AlignmentFlag.AlignLeft)
                table.setItem(r, 1, NumberItem(value, f"{value:+.3f}"))
            table.resizeColumnToContents(1)

    def show_contexts(self, contexts: Sequence[TopContext] | None, note: str = "") -> None:
        """Its top windows, its token highlighted; None: no scan yet (`note` says so)."""
        if not contexts:
            self.contexts.setPlainText(note)
            return
        lines = [f"<p style='margin:0 0 6px 0'>{context_html(c)}</p>" for c in contexts]
        self.contexts.setHtml("".join(lines))


def heading_text(text: str) -> QLabel:
    label = heading()
    label.setText(text)
    return label


def context_html(context: TopContext) -> str:
    """The activation, then the window's text around its token, that token highlighted."""
    first = max(0, context.position - CONTEXT_BEFORE)
    last = min(len(context.tokens), context.position + CONTEXT_AFTER + 1)
    parts = ["…" if first > 0 else ""]
    for i in range(first, last):
        text = html.escape(context.tokens[i].replace("\n", "⏎"))
        if i == context.position:
            text = f"<span style='background:{HIGHLIGHT}'><b>{text}</b></span>"
        parts.append(text)
    parts.append("…" if last < len(context.tokens) else "")
    return f"<code>{context.activation:7.3f}</code>&nbsp;&nbsp;" + "".join(parts)
