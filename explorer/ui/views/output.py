"""Output head: the most likely next tokens at the selected position (bars and a table),
the prompt's actual next token with its probability and loss, the top-k before and after
the interventions side by side when any are on, the sampling distribution there (before and
after temperature, top-k and top-p, redrawn as those move), and the logit lens: what the
residual stream would predict after the embeddings and after every block."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from explorer.export.colour_maps import NON_FINITE_RGBA
from explorer.state.sampling import drawn_at
from explorer.ui.views.base import StageView
from explorer.ui.widgets.layout import (
    VERTICAL,
    WrappingPanel,
    adaptive_splitter,
    scroll_into_view,
    splitter,
    stack,
)
from explorer.ui.widgets.sampling_chart import SamplingControls, SamplingPanel
from explorer.ui.widgets.tables import RIGHT, caption, heading, read_only_table
from explorer.ui.widgets.topk_chart import ACTUAL_COLOR, TopKChart, short_probability
from gpt_core import LogitLens, Trace
from gpt_core.probe.sections import Section

VALUE_ROLE = Qt.ItemDataRole.UserRole  # the exact number behind a cell's text
PROBABILITY_ROLE = VALUE_ROLE + 1  # lens cells: VALUE_ROLE holds the token id, this its p
_ACTUAL_TINT = QColor("#d3f9d8")
_LENS_RGB = np.array([76, 110, 245])  # lens cells are tinted towards this by probability
_FIRST_TOP1_MARK = "★"
LENS_COLUMN_PX = 110  # "2e-4 ␣token": narrower and every cell reads "2e-4 ␣…"


def format_probability(p: float) -> str:
    return f"{p:.4g}"


def _perplexity(loss: float) -> str:
    """exp(loss), readable when it is huge (a random model's loss is about 11)."""
    if loss > 700:  # exp would overflow a float
        return f"e^{loss:.0f}"
    value = np.exp(loss)
    return f"{value:,.1f}" if value < 1e6 else f"{value:.3g}"


def _item(text: str, value=None, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if value is not None:
        item.setData(VALUE_ROLE, value)
    if align_right:
        item.setTextAlignment(RIGHT)
    return item


def _table(columns: list[str]) -> QTableWidget:
    table = read_only_table(columns)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    return table


class PredictionsPanel(QWidget):
    """One run's top-k at one position: a title, the bars and the table."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = heading()
        self.chart = TopKChart()
        self.table = _table(["rank", "token", "id", "probability"])
        self.table.verticalHeader().hide()
        self.table.setMinimumHeight(160)  # five ranks at least
        header = self.table.horizontalHeader()
        # Columns fitted once per fill: ResizeToContents would re-measure on every cell set.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        split = splitter(VERTICAL, self.chart, self.table, sizes=(300, 200))
        stack(self.title, split, owner=self, spacing=2)

    def show_run(self, title: str, trace: Trace, position: int, tokenizer) -> None:
        ids = trace["logits/topk_ids"][position]  # [k]
        probs = trace["logits/topk_probs"][position]  # [k]
        tokens = tokenizer.displays(ids.tolist())
        actual = _actual_rank(trace, position)
        self.title.setText(title)
        self.chart.set_predictions(tokens, probs, actual)
        self.table.setRowCount(len(ids))
        for rank, (token_id, token, p) in enumerate(zip(ids, tokens, probs, strict=True)):
            cells = (
                _item(str(rank + 1), rank + 1, align_right=True),
                _item(token),
                _item(str(token_id), int(token_id), align_right=True),
                _item(format_probability(p), float(p), align_right=True),
            )
            for col, cell in enumerate(cells):
                if rank == actual:
                    cell.setBackground(_ACTUAL_TINT)
                self.table.setItem(rank, col, cell)
        self.table.resizeColumnsToContents()

    def clear(self) -> None:
        self.title.setText("")
        self.table.setRowCount(0)
        self.chart.set_predictions([], np.zeros(0), None)


def _actual_rank(trace: Trace, position: int) -> int | None:
    """Rank of the prompt's next token among the top-k at `position`, if it is there."""
    if position + 1 >= trace.n_tokens:
        return None
    hits = np.flatnonzero(trace["logits/topk_ids"][position] == trace.token_ids[position + 1])
    return int(hits[0]) if hits.size else None


def first_top1_row(lens: LogitLens, final_id: int) -> int | None:
    """The first lens row whose most likely token is the model's final prediction."""
    rows = np.flatnonzero(lens.topk_ids[:, 0] == final_id)
    return int(rows[0]) if rows.size else None


def _split_sizes(comparing: bool, total: int) -> list[int]:
    """Widths of the predictions (one or two runs) and of the logit lens."""
    share = 0.64 if comparing else 0.36
    return [int(total * share), total - int(total * share)]


def _lens_tint(p: float) -> QColor:
    if not np.isfinite(p):
        return QColor(*NON_FINITE_RGBA[:3])
    rgb = 255 + (_LENS_RGB - 255) * min(max(p, 0.0), 1.0)
    return QColor(*(int(v) for v in rgb))


class OutputView(StageView):
    name = "output"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.summary = caption("", rich=True)
        self.before = PredictionsPanel()
        self.after = PredictionsPanel()
        self.before.hide()

        self.lens_title = heading()
        self.lens_table = _table([f"top {i + 1}" for i in range(5)])
        # Stretch: all k columns in view. Cells start with the probability, so eliding a long
        # token keeps it (the tooltip has everything).
        self.lens_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.lens_table.horizontalHeader().setMinimumSectionSize(LENS_COLUMN_PX)
        self.lens_table.setMinimumHeight(200)
        self.lens_note = caption()
        self.lens_shown: LogitLens | None = None  # what the lens table holds
        self.sampling_controls = SamplingControls(session)
        self.sampling = SamplingPanel()
        self.runs = adaptive_splitter(700, self.before, self.after)  # before | after
        # panes of a splitter: their wrapped titles and notes keep their lines' height
        lens_panel = stack(
            self.lens_title, self.lens_table, self.lens_note, owner=WrappingPanel(), spacing=2
        )
        sampling = stack(
            (self.sampling_controls, 0), (self.sampling, 1), owner=WrappingPanel(), spacing=4
        )
        right = splitter(VERTICAL, sampling, lens_panel, stretch=(3, 2))
        self.split = adaptive_splitter(820, self.runs, right, stretch=(2, 3))
        self._comparing = False
        stack(self.summary, self.split, owner=self)
        session.logitLensChanged.connect(self._draw_lens)
        session.logitLensChanged.connect(self._draw_sampling)
        session.samplingChanged.connect(self._draw_sampling)

    def show_part(self, part: str) -> None:
        """The tour's sampling step: the sampling controls and bars scrolled into sight."""
        if part == "sampling":
            QTimer.singleShot(0, lambda: scroll_into_view(self.sampling_controls))

    # --- drawing ---
    def draw(self, section: Section) -> None:
        session, trace = self.session, self.trace
        position, tokenizer = session.position, session.tokenizer
        token = trace.token_strings[position]
        comparing = session.result.comparison is not None
        if comparing != self._comparing:  # two runs side by side need more room
            self._comparing = comparing
            self.before.setVisible(comparing)
            self.split.setSizes(_split_sizes(comparing, sum(self.split.sizes())))
            half = sum(self.runs.sizes()) // 2
            self.runs.setSizes([half, half])
        if comparing:
            baseline = session.result.baseline
            self.before.show_run("Before (no interventions)", baseline, position, tokenizer)
        after_title = "After (interventions on)" if comparing else "Most likely next tokens"
        self.after.show_run(
            f"{after_title} · position {position} “{token}”", trace, position, tokenizer
        )
        self.summary.setText(self._summary_text(position))
        if not np.isfinite(trace["logits/last"]).all():
            self.summary.setText(
                "<b style='color:#c92a2a'>The logits are not finite (NaN or Inf)</b>: the "
                "weights hold non-finite values, so the probabilities below mean nothing and "
                "no token can be generated. " + self.summary.text()
            )
        self._draw_lens()
        self._draw_sampling()

    def _draw_sampling(self) -> None:
        """The distribution at the selected position with the settings now, from the run's
        logits (a change of temperature, top-k or top-p never runs the model)."""
        session, trace = self.session, self.trace
        if trace is None:
            return
        position = session.position
        title = f"Sampling distribution at position {position} “{trace.token_strings[position]}”"
        try:
            distribution = session.sampling_distribution(position)
        except ValueError as exc:
            self.sampling.show_message(title, str(exc))
            return
        if distribution is None:
            self.sampling.show_message(title, "Reading this position's logits…")
            return
        drawn = drawn_at(session.state, position)
        self.sampling.show_distribution(title, distribution, session.tokenizer, drawn)

    def _summary_text(self, position: int) -> str:
        result, trace = self.session.result, self.trace
        runs = [("before", result.baseline), ("after", trace)]
        if result.comparison is None:
            runs = [("", trace)]
        parts = []
        if position + 1 < trace.n_tokens:
            next_id = int(trace.token_ids[position + 1])
            shown = f"“{html.escape(trace.token_strings[position + 1])}” (id {next_id})"
            scores = []
            for name, run in runs:
                loss = float(run["loss/per_token"][position])
                rank = _actual_rank(run, position)
                where = f"rank {rank + 1}" if rank is not None else f"not in the top {run.top_k}"
                scores.append(
                    f"{name + ': ' if name else ''}p = {format_probability(np.exp(-loss))}, "
                    f"loss −log p = {loss:.3f} ({where})"
                )
            parts.append(
                f"Actual next token after position {position}: "
                f"<b style='color:{ACTUAL_COLOR}'>{shown}</b> · " + " · ".join(scores)
            )
        else:
            parts.append(
                f"Position {position} is the last token: the prompt has no next token to "
                "score here; the bars are the model's guess for what comes after it."
            )
        if trace.loss is not None:
            losses = " → ".join(f"{name} {run.loss:.3f}".strip() for name, run in runs)
            parts.append(
                f"Mean loss of the prompt: {losses} (perplexity {_perplexity(trace.loss)})"
            )
        return "<br>".join(parts)

    def _draw_lens(self) -> None:
        trace, lens = self.trace, self.session.state.logit_lens
        if trace is None:
            return
        position = self.session.position
        self.lens_title.setText(
            f"Logit lens at position {position} “{trace.token_strings[position]}”: "
            "each layer's residual stream read through final_norm and out_head"
        )
        if lens is None or lens.position != position:
            self.lens_shown = None
            self.lens_table.setRowCount(0)
            self.lens_note.setText("Computing the logit lens…")
            return
        final_id = int(trace["logits/topk_ids"][position, 0])
        first = first_top1_row(lens, final_id)
        rows, k = lens.topk_ids.shape
        self.lens_table.setRowCount(rows)
        self.lens_table.setColumnCount(k)
        self.lens_table.setHorizontalHeaderLabels([f"top {i + 1}" for i in range(k)])
        self.lens_table.setVerticalHeaderLabels(
            [
                f"{label} {_FIRST_TOP1_MARK}" if r == first else label
                for r, label in enumerate(lens.labels)
            ]
        )
        tokenizer = self.session.tokenizer
        bold = QFont()
        bold.setBold(True)
        for r in range(rows):
            for c in range(k):
                token_id, p = int(lens.topk_ids[r, c]), float(lens.topk_probs[r, c])
                text = f"{short_probability(p)} {tokenizer.display(token_id)}"
                cell = _item(text, token_id)
                cell.setToolTip(f"{text} (id {token_id}, p = {p:.6g})")
                cell.setData(PROBABILITY_ROLE, p)
                cell.setBackground(QBrush(_lens_tint(p)))
                if p > 0.7:  # the tint is dark enough for white text
                    cell.setForeground(QBrush(QColor("white")))
                if token_id == final_id:
                    cell.setFont(bold)
                self.lens_table.setItem(r, c, cell)
        self.lens_shown = lens
        final = f"“{tokenizer.display(final_id)}”"
        if first is None:
            where = f"The final prediction {final} is never the top-1 of a layer."
        else:
            where = (
                f"{_FIRST_TOP1_MARK} the final prediction {final} (bold) is top-1 first "
                f"{'at the embeddings' if first == 0 else 'after ' + lens.labels[first]}."
            )
        self.lens_note.setText(where + " Cells are tinted by probability.")

    def clear(self) -> None:
        self.summary.setText("")
        self.before.clear()
        self.after.clear()
        self.before.hide()
        self._comparing = False
        self.lens_shown = None
        self.lens_table.setRowCount(0)
        self.lens_title.setText("")
        self.lens_note.setText("")
        self.sampling.show_message("", "")
