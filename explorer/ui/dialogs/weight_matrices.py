"""The weight matrices of a section in a window of their own: W_query, W_key, W_value and
out_proj of a block's attention, the feed-forward's two layers, the embeddings or the
output head, each a heatmap with its shape, parameter count and norm. It follows the walk:
the section selected (when it has weight matrices), its block and the selected head, whose
slice of the attention matrices is outlined."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QGridLayout, QVBoxLayout, QWidget

from explorer.session.session import Session
from explorer.ui.widgets.tables import caption, heading
from explorer.ui.widgets.weight_matrix import WeightMatrixPlot
from gpt_core.analysis.weight_matrices import HEAD_COLUMNS, HEAD_ROWS, section_matrices
from gpt_core.probe.sections import SECTIONS

COLUMNS = 2  # heatmaps side by side
MIN_PLOT_PX = (360, 260)


class WeightsDialog(QDialog):
    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.shown: tuple[str, int | None] | None = None  # section name and block
        self.heading = heading()
        self.note = caption()
        self.plots: list[WeightMatrixPlot] = []
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.note)
        layout.addLayout(self.grid, 1)
        self.resize(1040, 700)
        session.sectionChanged.connect(self.follow)
        session.modelChanged.connect(self.follow)
        session.headChanged.connect(self._outline)
        session.weight_matrices.ready.connect(self._ready)

    def follow(self) -> None:
        """Show the selected section's matrices; for a section without any, keep the ones
        shown, in the selected block."""
        section = self.session.section
        if section is None:
            return
        if section_matrices(section.name):
            self.shown = (section.name, section.layer)
        elif self.shown is not None and SECTIONS[self.shown[0]].per_block:
            self.shown = (self.shown[0], self.session.selection.layer)
        self.draw()

    def draw(self) -> None:
        if self.shown is None or self.session.config is None or not self.isVisible():
            return  # a closed dialog reads and draws nothing: show_weights draws on opening
        name, layer = self.shown
        title = SECTIONS[name].title if layer is None else f"Block {layer} · {SECTIONS[name].title}"
        self.setWindowTitle(f"Weights · {title}")
        matrices = self.session.weight_matrices.matrices(name, layer)
        if matrices is None:
            self.heading.setText(f"{title}: reading the weight matrices…")
            return
        self.heading.setText(f"{title}: weight matrices")
        self._grow_to(len(matrices))
        for plot, matrix in zip(self.plots, matrices, strict=False):
            plot.show_matrix(matrix, self.session.selection.head)
        for index, plot in enumerate(self.plots):
            plot.setVisible(index < len(matrices))
        self._say(matrices)

    def _grow_to(self, count: int) -> None:
        while len(self.plots) < count:
            plot = WeightMatrixPlot()
            plot.setMinimumSize(*MIN_PLOT_PX)
            index = len(self.plots)
            self.grid.addWidget(plot, index // COLUMNS, index % COLUMNS)
            self.grid.setRowStretch(index // COLUMNS, 1)  # rows share the height evenly
            self.plots.append(plot)

    def _say(self, matrices) -> None:
        text = "Blue below 0, red above, white at 0."
        if any(m.entry.linear for m in matrices):
            text += " A layer's rows are the features it reads, its columns those it writes."
        if any(m.downsampled for m in matrices):
            text += " A downsampled matrix shows the mean of the weights each cell stands for."
        self.note.setText(text + head_note(matrices, self.session.selection.head))

    def _outline(self) -> None:
        if not self.isVisible():
            return
        head = self.session.selection.head
        for plot in self.plots:
            plot.outline_head(head)
        if self.shown is not None:
            matrices = self.session.weight_matrices.matrices(*self.shown)
            if matrices is not None:
                self._say(matrices)

    def _ready(self, name: str, layer) -> None:
        if (name, layer) == self.shown:
            self.draw()


def head_note(matrices, head: int) -> str:
    """ " Outlined: head 2, columns 128–191 of W_query, W_key, W_value and rows 128–191 of
    out_proj." ("" when no matrix has heads)."""
    spans = [(m.entry.short_name, m.head_span(head)) for m in matrices]
    spans = [(name, span) for name, span in spans if span is not None]
    if not spans:
        return ""
    _, start, stop = spans[0][1]
    groups = [
        f"{axis} {start}–{stop - 1} of {', '.join(names)}"
        for axis in (HEAD_COLUMNS, HEAD_ROWS)
        if (names := [name for name, span in spans if span[0] == axis])
    ]
    return f" Outlined: head {head}, {' and '.join(groups)}."


def show_weights(session: Session, anchor: QWidget) -> WeightsDialog:
    """Open (or bring forward) the window's one Weights dialog on the selected section."""
    window = anchor.window()
    dialog = window.findChild(WeightsDialog)
    if dialog is None:
        dialog = WeightsDialog(session, window)
    dialog.show()
    dialog.follow()
    dialog.raise_()
    return dialog
