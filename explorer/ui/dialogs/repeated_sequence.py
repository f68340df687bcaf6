"""One head's attention weights on the repeated sequence, in a window of its own: the sequence
repeats n random tokens, so an induction head shows a stripe n − 1 below the diagonal in
the second copy (each token looks at what followed its previous occurrence), and a
duplicate-token head one n below (the previous occurrence itself)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QDialog, QVBoxLayout

from explorer.session.jobs.repeated_sequence import RepeatedSequenceHead
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.tables import caption


class RepeatedSequenceDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.resize(640, 680)
        self.heatmap = Heatmap()
        self.note = caption()
        self.note.setWordWrap(True)
        self.stripe = pg.PlotDataItem(pen=pg.mkPen("#e8590c", width=1, style=pg.QtCore.Qt.DashLine))
        self.heatmap.plot.addItem(self.stripe)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heatmap, 1)
        layout.addWidget(self.note)

    def show_head(self, head: RepeatedSequenceHead) -> None:
        n = head.repeat_length
        title = (
            f"Block {head.layer} · head {head.head} on the repeated sequence · induction "
            f"{head.scores.get('induction', np.nan):.3f} · duplicate token "
            f"{head.scores.get('duplicate_token', np.nan):.3f}"
        )
        self.setWindowTitle(title)
        self.heatmap.set_matrix(head.weights, head.labels, head.labels, title=title, signed=False)
        # the induction stripe: query t in the second copy, key t − n + 1 (cell centres)
        queries = np.arange(n + 1, 2 * n + 1)
        self.stripe.setData(queries - n + 1 + 0.5, queries + 0.5)
        self.note.setText(
            f"<|endoftext|>, then {n} random tokens, then the same {n} again; rows are "
            f"queries, columns keys. Dashed: where an induction head looks (the token after "
            f"the previous occurrence, {n - 1} back); a duplicate-token head looks one further "
            "back. Measured without your switches, like the overview's scores."
        )
        self.show()
        self.raise_()
