"""Switches and their effect: which heads, blocks and SAE features are off (or pushed), the
ablation mode, one click to restore all, and what the switches changed against the
un-ablated run of the same prompt (Δ loss, Δ probability of the predicted token, KL, top-k
before and after)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session

_TOP_ROWS = 10
_CHANGED = QColor("#fff3bf")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def format_number(value: float, sign: str = "") -> str:
    """Four decimals, or three significant digits where those would read 0.0000 (the
    probabilities of random weights are ~1e-5); an exact zero has no sign."""
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:{sign}.2e}"
    return f"{value:{sign}.4f}"


def format_signed(value: float) -> str:
    return format_number(value, "+")


class EffectPanel(QWidget):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.switched_off = QLabel()
        self.switched_off.setWordWrap(True)
        self.mode = QComboBox()
        self.mode.addItem("zero: output 0", "zero")
        self.mode.addItem("mean: output its mean over positions", "mean")
        # the choices' full text in the list; the box itself fits a narrow dock
        self.mode.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.mode.setMinimumContentsLength(6)
        self.mode.activated.connect(lambda i: session.set_ablation_mode(self.mode.itemData(i)))
        self.restore = QPushButton("Switch all on")
        self.restore.setToolTip("Restore every head, block and SAE feature (Ctrl+Shift+R)")
        self.restore.clicked.connect(session.restore_all)
        self.delta_loss = QLabel()
        self.delta_pred = QLabel()
        self.delta_top1 = QLabel()
        self.kl = QLabel()
        for label in (self.delta_loss, self.delta_pred, self.delta_top1, self.kl):
            label.setWordWrap(True)
        figures = QFormLayout()
        figures.addRow("Δ loss (prompt)", self.delta_loss)
        figures.addRow("Δ p(predicted token)", self.delta_pred)
        figures.addRow("Δ top-1 probability", self.delta_top1)
        figures.addRow("KL (last position)", self.kl)
        self.position_label = QLabel()
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["before", "p", "after", "p"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        for column, mode in enumerate(
            (QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.ResizeToContents) * 2
        ):
            header.setSectionResizeMode(column, mode)
        row = QHBoxLayout()
        row.addWidget(QLabel("Mode"))
        row.addWidget(self.mode, 1)
        row.addWidget(self.restore)
        layout = QVBoxLayout(self)
        layout.addWidget(self.switched_off)
        layout.addLayout(row)
        layout.addLayout(figures)
        layout.addWidget(self.position_label)
        layout.addWidget(self.table, 1)
        hint = QLabel(
            "Untick heads under the attention view (or Ctrl+click them), untick blocks "
            "in the Architecture tree; switch SAE features off or push them on a feature's "
            "card (Features tab)."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color:#868e96;")
        layout.addWidget(hint)
        session.interventionsChanged.connect(self.show_switches)
        session.featuresChanged.connect(self.show_switches)
        session.traceChanged.connect(self.draw)
        session.positionChanged.connect(self.draw)
        self.show_switches()
        self.draw()

    def show_switches(self) -> None:
        """What is switched off (heads, blocks, SAE features); the figures wait for the run
        with these switches."""
        state = self.session.state
        interventions, features = state.interventions, state.features.switches
        said = [] if interventions.is_empty else [interventions.describe()]
        if not features.is_empty:
            said.append(f"SAE {features.describe()}")
        self.switched_off.setText(
            f"<b style='color:#c92a2a'>Switched</b> — {html.escape('; '.join(said))}"
            if said
            else "Everything is on."
        )
        self.mode.setCurrentIndex(self.mode.findData(interventions.mode))
        self.restore.setEnabled(bool(said))
        result = self.session.result
        if result is not None and not state.is_current(result.key):
            self._blank_figures()  # of other switches: the run with these is on its way

    def _blank_figures(self) -> None:
        for label in (self.delta_loss, self.delta_pred, self.delta_top1, self.kl):
            label.setText("—")

    def draw(self) -> None:
        """The figures and the top-k of the current run against the baseline."""
        session, result = self.session, self.session.result
        self._blank_figures()
        if result is None:
            self.position_label.setText("")
            self.table.setRowCount(0)
            return
        trace, comparison, position = result.trace, result.comparison, session.position
        self.position_label.setText(
            f"Next token after position {position} “{trace.token_strings[position]}”:"
        )
        if comparison is not None:
            if comparison.delta_loss is not None:
                self.delta_loss.setText(format_signed(comparison.delta_loss))
            before = comparison.pred_prob_before[position]
            after = comparison.pred_prob_after[position]
            token = session.tokenizer.display(int(comparison.top1_ids_before[position]))
            change = format_signed(float(comparison.delta_pred_prob[position]))
            probs = f"{format_number(before)} → {format_number(after)}"
            self.delta_pred.setText(f"{change}  (“{token}”: {probs})")
            self.delta_top1.setText(format_signed(float(comparison.delta_top1_prob[position])))
            self.kl.setText(f"{format_number(comparison.kl_last)} nats")
        self._fill_table(result.baseline, trace if comparison else None, position)

    def _fill_table(self, before, after, position: int) -> None:
        display = self.session.tokenizer.display
        rows = min(_TOP_ROWS, before.top_k)
        self.table.setRowCount(rows)
        before_ids = before["logits/topk_ids"][position]
        before_p = before["logits/topk_probs"][position]
        after_ids = after["logits/topk_ids"][position] if after is not None else None
        after_p = after["logits/topk_probs"][position] if after is not None else None
        for r in range(rows):
            cells = [display(int(before_ids[r])), format_number(before_p[r]), "", ""]
            if after is not None:
                cells[2:] = [display(int(after_ids[r])), format_number(after_p[r])]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (1, 3):
                    item.setTextAlignment(_RIGHT)
                else:  # a narrow dock elides a long token: the tooltip has it whole
                    item.setToolTip(text)
                if after is not None and c == 2 and after_ids[r] != before_ids[r]:
                    item.setBackground(_CHANGED)
                self.table.setItem(r, c, item)
