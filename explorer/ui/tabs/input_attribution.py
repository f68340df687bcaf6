"""The Attribution tab: which input tokens made the prediction at the selected position?
For a target token (optionally against a foil), every method's score per input token: the
prompt's tokens coloured by the chosen method (blue-white-red around 0 for signed scores),
the methods side by side as rows of a heatmap, and a table of tokens, scores and ranks;
the surprisal of each token under the model is there to compare. Exportable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidgetItem,
    QWidget,
)

from explorer.export.input_attribution import export_attribution
from explorer.session.session import Session
from explorer.state.analysis import AttributionRun, AttributionSettings, current_attribution
from explorer.ui.widgets.flow import FlowLayout
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.layout import adaptive_splitter, stack
from explorer.ui.widgets.layout import scrolled as scrolled_page
from explorer.ui.widgets.tables import NumberItem, caption, read_only_table
from explorer.ui.widgets.token_picker import TokenPicker
from explorer.ui.widgets.token_strip import TokenStrip, scrolled
from gpt_core import GPTCoreError
from gpt_core.analysis.input_attribution import (
    DEFAULT_STEPS,
    INPUT_ATTRIBUTION_METHODS,
    INTEGRATION_RULES,
    MAX_STEPS,
)
from gpt_core.model.tokenizer import ENDOFTEXT_ID

METHOD_TEXTS = {
    "grad_norm": "Gradient norm",
    "input_x_grad": "Input × gradient",
    "integrated_gradients": "Integrated gradients",
    "occlusion": "Occlusion",
    "rollout": "Attention rollout",
    "surprisal": "Surprisal −log p(token)",
}
BASELINE_TOKENS = (ENDOFTEXT_ID, 262, 13)  # <|endoftext|>, " the", "."
SIDE_BY_SIDE_FROM = 760  # px: the ranked table beside the map


class AttributionView(QWidget):
    job_kind = "attribution"  # the job its run_button starts (a key of JOB_KINDS)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        tokenizer = session.tokenizer
        self.target = TokenPicker(tokenizer, "the target")
        self.use_foil = QCheckBox("against")
        self.foil = TokenPicker(tokenizer, "the foil")
        self.baseline = QComboBox()
        self.baseline.addItems(["zero vector", "a token's embedding:"])
        self.baseline_token = TokenPicker(tokenizer, "the baseline token")
        self.steps = QSpinBox()
        self.steps.setRange(1, MAX_STEPS)
        self.steps.setValue(AttributionSettings().steps)
        self.steps.setToolTip("Integrated-gradients steps: Gauss–Legendre nodes or midpoints")
        self.integration = QComboBox()
        self.integration.addItems(["Gauss–Legendre", "midpoint"])  # INTEGRATION_RULES' order
        self.integration.setToolTip(
            "How integrated gradients integrates along the path: Gauss–Legendre quadrature "
            "reaches a given completeness gap in far fewer steps than the midpoint rule"
        )
        self.run_button = QPushButton("Attribute")
        self.cancel_button = QPushButton("Cancel")
        self.export_button = QPushButton("Export…")
        self._offered_for = None  # (token ids, position) the pickers' choices are for
        self.explained = caption(rich=True)
        self.colour_by = QComboBox()
        self.strip = TokenStrip()
        self.methods = Heatmap()
        # Before a result there is nothing to draw: a sentence says how to get one.
        self.empty_note = caption("color: #495057; font-size: 11pt;")
        self.empty_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.results = QStackedWidget()
        self.table = read_only_table(["position", "token", "score", "rank"])
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # The token takes what the numbers leave (elided), so the rank stays in sight.
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumWidth(280)
        self._lay_out()
        self._wire()

    def _lay_out(self) -> None:
        tokens, method = FlowLayout(), FlowLayout()  # rows that wrap on a narrow screen
        for item in (QLabel("Target:"), self.target, self.use_foil, self.foil,
                     self.run_button, self.cancel_button, self.export_button):  # fmt: skip
            tokens.addWidget(item)
        for item in (QLabel("Baseline (IG, occlusion):"), self.baseline, self.baseline_token,
                     QLabel("Integrated gradients:"), self.integration,
                     QLabel("steps:"), self.steps):  # fmt: skip
            method.addWidget(item)
        colour_row = QHBoxLayout()
        colour_row.addWidget(QLabel("Colour the tokens by:"))
        colour_row.addWidget(self.colour_by)
        colour_row.addStretch(1)
        # the table beside the map where both fit, else below it (the tab then scrolls)
        lower = adaptive_splitter(SIDE_BY_SIDE_FROM, self.methods, self.table, stretch=(3, 1))
        self.results.addWidget(self.empty_note)
        self.results.addWidget(lower)
        self.explained.setWordWrap(True)
        page = stack(
            tokens, method, self.explained, colour_row, (scrolled(self.strip), 0), (self.results, 1)
        )
        # on a small screen the tab scrolls rather than crushing the map
        stack(scrolled_page(page), owner=self)
        self.cancel_button.hide()
        self.foil.setEnabled(False)
        self.baseline_token.setEnabled(False)

    def _wire(self) -> None:
        session = self.session
        for picker in (self.target, self.foil, self.baseline_token):
            picker.tokenChanged.connect(lambda _: self._push())
        self.use_foil.toggled.connect(self.foil.setEnabled)
        self.use_foil.toggled.connect(lambda _: self._push())
        self.baseline.currentIndexChanged.connect(
            lambda index: (self.baseline_token.setEnabled(index == 1), self._push())
        )
        self.steps.valueChanged.connect(lambda _: self._push())
        self.integration.currentIndexChanged.connect(self._integration_changed)
        self.run_button.clicked.connect(self._run)
        self.cancel_button.clicked.connect(lambda: session.cancel("attribution"))
        self.export_button.clicked.connect(self._export)
        self.colour_by.currentIndexChanged.connect(lambda _: self._show_method())
        session.attributionChanged.connect(self.refresh)
        session.positionChanged.connect(self._offer_tokens)
        session.traceChanged.connect(self._offer_tokens)
        session.busyChanged.connect(self._busy)

    # --- settings ---
    def settings(self) -> AttributionSettings:
        """The settings the controls describe (a token not valid yet counts as None)."""
        foil = self.foil.token_id() if self.use_foil.isChecked() else None
        baseline = self.baseline_token.token_id() if self.baseline.currentIndex() == 1 else None
        return AttributionSettings(
            self.target.token_id(), foil, self.steps.value(), baseline, INPUT_ATTRIBUTION_METHODS,
            INTEGRATION_RULES[self.integration.currentIndex()],
        )  # fmt: skip

    def _integration_changed(self, index: int) -> None:
        """A step count left at one rule's default moves to the other's."""
        if self.steps.value() == DEFAULT_STEPS[INTEGRATION_RULES[1 - index]]:
            self.steps.setValue(DEFAULT_STEPS[INTEGRATION_RULES[index]])  # pushes
        self._push()

    def _push(self) -> None:
        self.session.attribution.set_settings(self.settings())

    def _run(self) -> None:
        self._push()
        for picker in (self.target, self.foil, self.baseline_token):
            if picker.isEnabled() and picker.token_id() is None:
                self.session.report("warning", picker.problem)
                return
        self.session.attribution.run()

    def _offer_tokens(self) -> None:
        """Target and foil are offered the likely next tokens at the selected position (the
        target the most likely, the foil the second). The choices stay while the prompt and
        position do (switches only change the probabilities); made for another prompt or
        position, they are dropped, so a token chosen for another prediction never lingers."""
        trace = self.session.trace
        if trace is None:
            return
        position = self.session.position
        offered_for = (tuple(trace.token_ids.tolist()), position)
        pickers = (self.target, self.foil, self.baseline_token)
        kept = [p.token_id() if offered_for == self._offered_for else None for p in pickers]
        self._offered_for = offered_for
        ids = trace["logits/topk_ids"][position].tolist()
        probs = trace["logits/topk_probs"][position].tolist()
        labels = self.session.tokenizer.displays(ids)
        self.target.set_candidates(ids, labels, probs)
        self.foil.set_candidates(ids[1:] + ids[:1], labels[1:] + labels[:1], probs[1:] + probs[:1])
        vocab = trace.config.vocab_size
        baselines = [i for i in BASELINE_TOKENS if i < vocab]
        self.baseline_token.set_candidates(baselines, self.session.tokenizer.displays(baselines))
        for picker, token in zip(pickers, kept, strict=True):
            if token is not None:
                picker.show_token(token)
        self._push()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.target.count() == 0:
            self._offer_tokens()
        self.refresh()

    # --- results ---
    def refresh(self) -> None:
        run = current_attribution(self.session.state)
        trace = self.session.trace
        if run is None:
            self.explained.setText(
                "Choose a target and press <b>Attribute</b>: every method scores each input "
                "token for the prediction at the selected position."
                if trace is not None
                else "Run a prompt first."
            )
            self.empty_note.setText(
                "No attribution yet. Pick the target token above (the model's likeliest next "
                "token at the selected position is offered first) and press Attribute: the "
                "methods' scores for every input token appear here."
                if trace is not None
                else "No attribution yet: run a prompt (Ctrl+Enter), then pick a target token "
                "and press Attribute."
            )
            self.strip.set_tokens([], [], [])
            self.table.setRowCount(0)
            self.results.setCurrentWidget(self.empty_note)
            self.colour_by.setEnabled(False)  # nothing to colour by yet
            return
        self.results.setCurrentIndex(1)
        self.colour_by.setEnabled(True)
        self.explained.setText(self._describe(run))
        names = [*run.result.scores, "surprisal"]
        chosen = self.colour_by.currentData()
        self.colour_by.blockSignals(True)
        self.colour_by.clear()
        for name in names:
            self.colour_by.addItem(METHOD_TEXTS[name], name)
        self.colour_by.setCurrentIndex(names.index(chosen) if chosen in names else 0)
        self.colour_by.blockSignals(False)
        self._draw_methods(run, names)
        self._show_method()

    def scores_of(self, name: str) -> np.ndarray:
        """[T] the scores the tokens are coloured by: a method's, or each token's surprisal
        (NaN for the first token, which nothing predicts)."""
        run = current_attribution(self.session.state)
        if name != "surprisal":
            return run.result.scores[name]
        per_token = run.trace["loss/per_token"]  # [T - 1]: token t + 1 given tokens ≤ t
        return np.concatenate([[np.nan], per_token]).astype(np.float32)

    def _describe(self, run: AttributionRun) -> str:
        tokenizer, e, r = self.session.tokenizer, run.explained, run.result
        what = f"logit[{tokenizer.display(e.target)}]"
        if e.foil is not None:
            what += f" − logit[{tokenizer.display(e.foil)}]"
        label = run.trace.position_labels[e.position]
        text = f"Explaining <b>{what}</b> at position {label} = <b>{r.value:.4f}</b>"
        if r.completeness_gap is not None:
            change = r.value - r.baseline_value
            share = r.completeness_gap / abs(change) if change else float("inf")
            text += (
                f" · integrated gradients: f(baseline) = {r.baseline_value:.4f}, completeness "
                f"gap {r.completeness_gap:.2e} ({share:.1%} of the change"
                f"{'; more steps would shrink it' if share > 0.01 else ''})"
            )
        return text + f" · {run.seconds:.1f} s"

    def _draw_methods(self, run: AttributionRun, names: list[str]) -> None:
        # Tokens after the explained position cannot reach it: their columns would only
        # push the ones that can into a sliver at T = 1,000.
        reach = run.reach
        raw = np.stack([self.scores_of(name)[:reach] for name in names])  # [M, P + 1]
        peak = np.nanmax(np.abs(raw), axis=1, keepdims=True)
        scaled = raw / np.where(peak > 0, peak, 1.0)  # each row to its own largest magnitude

        def hover(row: int, col: int, value: float) -> str:
            label = run.trace.position_labels[col]
            return f"{METHOD_TEXTS[names[row]]} · {label}: {raw[row, col]:.6g}"

        self.methods.set_matrix(
            scaled, [METHOD_TEXTS[n] for n in names], run.trace.position_labels[:reach],
            signed=True, hover=hover,
            title=f"Every method on the tokens up to position {reach - 1}, each row scaled to "
            "its largest magnitude",
            missing="undefined (the first token's surprisal)",
        )  # fmt: skip
        self.methods.keep_labels(columns=(reach - 1,))  # the position explained

    def _show_method(self) -> None:
        run = current_attribution(self.session.state)
        name = self.colour_by.currentData()
        if run is None or name is None:
            return
        scores = self.scores_of(name)
        trace, tokenizer = run.trace, self.session.tokenizer
        ids = trace.token_ids.tolist()
        self.strip.set_tokens(trace.token_strings, ids, [tokenizer.token_bytes(i) for i in ids])
        signed = bool(np.nanmin(scores) < 0)
        self.strip.set_weights(scores, signed=signed)
        self.strip.set_selected(run.explained.position)
        self._fill_table(trace.token_strings[: run.reach], scores[: run.reach])

    def _fill_table(self, tokens: list[str], scores: np.ndarray) -> None:
        order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
        ranks = np.empty(len(scores), dtype=int)
        ranks[order] = np.arange(1, len(scores) + 1)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(scores))
        for row, (token, score) in enumerate(zip(tokens, scores, strict=True)):
            self.table.setItem(row, 0, NumberItem(row, str(row)))
            self.table.setItem(row, 1, QTableWidgetItem(token))
            self.table.setItem(row, 2, NumberItem(float(score), f"{score:.5g}"))
            self.table.setItem(row, 3, NumberItem(int(ranks[row]), str(ranks[row])))
        self.table.setSortingEnabled(True)
        self.table.sortItems(3)  # the strongest first

    def _busy(self, busy: bool, kind: str, label: str) -> None:
        running = self.session.runner.has_job("attribution")
        self.cancel_button.setVisible(running)
        self.run_button.setEnabled(not running)

    def _export(self) -> None:
        run = current_attribution(self.session.state)
        if run is None:
            self.session.report("info", "Nothing to export yet: press Attribute first.")
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the attribution into")
        if folder:
            self.export_to(Path(folder))

    def export_to(self, folder: Path) -> None:
        run = current_attribution(self.session.state)
        try:
            written = export_attribution(
                run.result, run.explained, run.trace.token_ids.tolist(),
                run.trace.position_labels, folder,
            )  # fmt: skip
        except (GPTCoreError, OSError) as exc:
            self.session.report("error", f"Export failed: {exc}")
            return
        self.session.report("info", f"Exported {len(written)} files to {folder}")
