"""What dropout does at the selected section, under every stage view's header.

The views draw the evaluation-mode run, where dropout passes everything through: one line
says so. After a training-mode backward step (Backward step tab, Training mode) the line
says instead how many entries dropout zeroed at this section's site in that run and that it
scaled the kept ones by 1/(1 − p), and "Show mask" draws the mask itself: which entries
were dropped (×0) and which kept (×1/(1 − p)).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from explorer.session.session import Session
from explorer.ui.widgets.heatmap import Heatmap
from gpt_core import Trace
from gpt_core.probe.sections import Section

MASK_HEIGHT_PX = 220


class DropoutNote(QWidget):
    """The line, and the mask of the training-mode run on demand."""

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.line = QLabel()
        self.line.setWordWrap(True)
        self.line.setStyleSheet("color: #495057; font-size: 11px;")
        self.show_mask = QToolButton(text="Show mask", checkable=True)
        self.show_mask.setAutoRaise(True)
        self.show_mask.setToolTip(
            "The dropout mask of the training-mode backward step at this section"
        )
        self.show_mask.toggled.connect(self.refresh)
        self.mask = Heatmap()
        self.mask.setMinimumHeight(MASK_HEIGHT_PX)
        self.mask.setMaximumHeight(MASK_HEIGHT_PX)
        self.mask.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.line, 1)
        row.addWidget(self.show_mask)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.mask)

    def refresh(self) -> None:
        section, trace, run = self.session.section, self.session.trace, self.session.gradients
        if section is None or trace is None:
            self.hide()
            return
        self.show()
        p = trace.config.drop_rate
        key = _mask_key(section)
        has_mask = run is not None and run.training and key is not None and key in run
        self.show_mask.setVisible(has_mask)
        self.mask.setVisible(has_mask and self.show_mask.isChecked())
        if p == 0:
            self.line.setText("This model's drop_rate is 0: dropout does nothing, in any mode.")
        elif run is None or not run.training:
            self.line.setText(
                f"Evaluation mode: dropout (p = {p:g}) does nothing here; a training-mode "
                "Backward step shows it act."
            )
        elif not has_mask:
            self.line.setText(
                f"No dropout in this section. (This view shows the evaluation-mode run; the "
                f"training-mode backward step used dropout seed {run.dropout_seed}.)"
            )
        else:
            self.line.setText(_mask_summary(run, key, p))
            if self.mask.isVisible():
                self._draw_mask(run, key, section, p)

    def _draw_mask(self, run: Trace, key: str, section: Section, p: float) -> None:
        mask, labels = run[key], run.position_labels
        scale = 1 / (1 - p)
        if mask.ndim == 3:  # attention weights [H, T, T]: the selected head's
            head = self.session.selection.head
            mask = np.where(np.tril(np.ones(mask.shape[1:], dtype=bool)), mask[head], np.nan)
            self.mask.label_columns = True
            title = f"Dropout on the attention weights, head {head}"
            columns = labels
        else:  # [T, D]
            self.mask.label_columns = False
            title = "Dropout mask"
            columns = [str(d) for d in range(mask.shape[1])]

        def hover(row: int, col: int, value: float) -> str:
            what = "dropped (×0)" if value == 0 else f"kept (×{value:.6g})"
            return f"{labels[row]} · {columns[col]}: {what}"

        self.mask.set_matrix(
            mask,
            labels,
            columns,
            title=f"{title}: purple = dropped (×0), yellow = kept (×{scale:.4g})",
            signed=False,
            hover=hover,
            masked=True,
        )
        self.mask.set_highlight_row(self.session.position)


def _mask_key(section: Section) -> str | None:
    """The trace key of the section's dropout mask, if dropout acts in it."""
    try:
        return section.key("dropout")
    except KeyError:
        return None


def _mask_summary(run: Trace, key: str, p: float) -> str:
    mask = run[key]
    if mask.ndim == 3:  # only the causal lower triangle carries weights
        mask = mask[:, np.tril(np.ones(mask.shape[1:], dtype=bool))]
    dropped = int((mask == 0).sum())
    return (
        f"Training-mode backward step (dropout seed {run.dropout_seed}): dropout zeroed "
        f"{dropped:,} of {mask.size:,} entries here ({dropped / mask.size:.1%}) and scaled the "
        f"kept ones by 1/(1 − {p:g}) = {1 / (1 - p):.4g}. The view below is the evaluation-"
        "mode run, where dropout does nothing."
    )
