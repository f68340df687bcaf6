"""The set-up of a patching experiment: the clean and corrupted prompts with their token
strips (differing positions marked), answer and distractor, metric, position, direction,
sweeps, method and path-patching receiver. Every edit goes to the Session as new
PatchSettings; the form follows the state back."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from explorer.state.app_state import PatchSettings
from explorer.ui.widgets.flow import FlowLayout
from explorer.ui.widgets.layout import stack
from explorer.ui.widgets.tables import caption
from explorer.ui.widgets.token_picker import TokenPicker
from explorer.ui.widgets.token_strip import TokenStrip, scrolled
from gpt_core.analysis.patching import DIRECTIONS, METRICS, SWEEPS

METHOD_TEXTS = {
    "exact": "exact (one run per cell)",
    "attribution": "attribution (first-order, one backward)",
    "both": "both, side by side",
}


class PatchSetup(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.clean = QLineEdit(
            placeholderText="clean prompt, e.g. “When Mary and John …, John gave a drink to”"
        )
        self.corrupted = QLineEdit(placeholderText="corrupted prompt: the same tokens but one")
        self.use_prompt = QPushButton("Use the prompt")
        self.use_prompt.setToolTip("Make the prompt box's text the clean prompt")
        self.corrupt_position = QSpinBox(minimum=0, maximum=4095)
        self.corrupt_with = QLineEdit(placeholderText="a token, e.g. ␣Mary → type “ Mary”")
        self.corrupt_button = QPushButton("Corrupt a token")
        self.clean_strip, self.corrupted_strip = TokenStrip(), TokenStrip()
        self.pair_note = caption()
        self.answer, self.distractor = (
            self._token_box("the answer", "default: clean top-1"),
            self._token_box("the distractor", "default: corrupted top-1"),
        )
        self.metric_box = _combo(METRICS)
        self.position = QSpinBox(minimum=-1, maximum=4095, value=-1)
        self.position.setSpecialValueText("last")
        self.direction = _combo(DIRECTIONS, {"denoise": "denoise", "noise": "noise"})
        self.sweeps = {name: QCheckBox(name) for name in SWEEPS}
        for name, box in self.sweeps.items():
            box.setToolTip(SWEEPS[name].patches)
        self.method = _combo(METHOD_TEXTS)
        self.receiver = QLineEdit(placeholderText="empty for none, logits, or 5.1.q")
        self.receiver.setToolTip("Path patching: every head's direct path into this receiver")
        self.run_button = QPushButton("Run patching")
        self._syncing = False
        self._lay_out()
        self._wire()
        self.show_settings()

    def _lay_out(self) -> None:
        grid = QGridLayout()
        grid.addWidget(QLabel("Clean"), 0, 0)
        grid.addWidget(self.clean, 0, 1)
        grid.addWidget(self.use_prompt, 0, 2)
        grid.addWidget(QLabel("Corrupted"), 1, 0)
        grid.addWidget(self.corrupted, 1, 1)
        grid.addWidget(self.corrupt_button, 1, 2)
        corrupt = QHBoxLayout()
        for widget in (QLabel("replace the clean token at"), self.corrupt_position):
            corrupt.addWidget(widget)
        corrupt.addWidget(QLabel("with"))
        corrupt.addWidget(self.corrupt_with, 1)
        grid.addLayout(corrupt, 2, 1)
        grid.setColumnStretch(1, 1)
        tokens = _row(
            ("Answer", self.answer), ("Distractor", self.distractor), ("Metric", self.metric_box)
        )
        where = _row(("at position", self.position), ("Direction", self.direction))
        sweeps = _row(("Sweeps", None), *((None, box) for box in self.sweeps.values()))
        method = _row(("Method", self.method), ("Path patching into", self.receiver))
        method.addWidget(self.run_button)
        # a long pair scrolls in its strips rather than pushing the maps out of the tab
        strips = stack(
            (scrolled(self.clean_strip), 0), (scrolled(self.corrupted_strip), 0), self.pair_note
        )
        stack(grid, strips, tokens, where, sweeps, method, owner=self, spacing=4)

    def _wire(self) -> None:
        jobs = self.session.patching
        for edit in (self.clean, self.corrupted, self.receiver):
            edit.editingFinished.connect(self.push)
        for edit in (self.clean, self.corrupted):  # the length check follows the typing
            edit.textChanged.connect(
                lambda _: self._show_strips(self.clean.text(), self.corrupted.text())
            )
        for box in (self.answer, self.distractor):
            box.lineEdit().editingFinished.connect(self.push)
            box.activated.connect(lambda _: self.push())
        for combo in (self.metric_box, self.direction, self.method):
            combo.activated.connect(lambda _: self.push())
        self.position.valueChanged.connect(lambda _: self.push())
        for box in self.sweeps.values():
            box.toggled.connect(lambda _: self.push())
        self.use_prompt.clicked.connect(jobs.use_prompt_as_clean)
        self.corrupt_button.clicked.connect(
            lambda: jobs.corrupt_token(self.corrupt_position.value(), self.corrupt_with.text())
        )
        self.run_button.clicked.connect(lambda: (self.push(), jobs.run()))
        self.clean_strip.positionClicked.connect(self.corrupt_position.setValue)
        self.session.patchingChanged.connect(self.show_settings)
        self.session.traceChanged.connect(self.show_candidates)

    def settings(self) -> PatchSettings:
        position = self.position.value()
        return replace(
            self.session.state.patching,
            clean_text=self.clean.text(),
            corrupted_text=self.corrupted.text(),
            answer=self._token_text(self.answer),
            distractor=self._token_text(self.distractor),
            metric=self.metric_box.currentData(),
            position=None if position < 0 else position,
            direction=self.direction.currentData(),
            sweeps=tuple(name for name, box in self.sweeps.items() if box.isChecked()),
            method=self.method.currentData(),
            receiver=self.receiver.text().strip(),
        )

    def push(self) -> None:
        if not self._syncing:
            self.session.patching.set_settings(self.settings())

    def show_settings(self) -> None:
        """The form as the state has it, and the two prompts' token strips."""
        s = self.session.state.patching
        self._syncing = True
        for edit, text in (
            (self.clean, s.clean_text),
            (self.corrupted, s.corrupted_text),
            (self.receiver, s.receiver),
        ):
            if edit.text() != text:
                edit.setText(text)
        for box, text in ((self.answer, s.answer), (self.distractor, s.distractor)):
            if self._token_text(box) != text:
                self._show_token(box, text)
        for combo, value in (
            (self.metric_box, s.metric),
            (self.direction, s.direction),
            (self.method, s.method),
        ):
            combo.setCurrentIndex(combo.findData(value))
        self.position.setValue(-1 if s.position is None else s.position)
        for name, box in self.sweeps.items():
            box.setChecked(name in s.sweeps)
        self._syncing = False
        self._show_strips(s.clean_text, s.corrupted_text)

    def show_candidates(self) -> None:
        """Likely answers to pick from: the top tokens of the prompt's run at the metric
        position, when the clean prompt is the prompt that ran."""
        s, trace = self.session.state.patching, self.session.trace
        tokenizer = self.session.tokenizer
        if trace is None or trace.token_ids.tolist() != tokenizer.encode(s.clean_text):
            return
        position = trace.n_tokens - 1 if s.position is None else min(s.position, trace.n_tokens - 1)
        ids = trace["logits/topk_ids"][position][:10].tolist()
        probs = trace["logits/topk_probs"][position][:10].tolist()
        for box, chosen in ((self.answer, s.answer), (self.distractor, s.distractor)):
            box.set_candidates(ids, tokenizer.displays(ids), probs)
            self._show_token(box, chosen)  # the setting, as picked or typed

    def _token_box(self, role: str, placeholder: str) -> TokenPicker:
        box = TokenPicker(self.session.tokenizer, role)
        box.lineEdit().setPlaceholderText(placeholder)
        box.setToolTip(f"{box.toolTip()}; empty for the default")
        return box

    def _token_text(self, box: TokenPicker) -> str:
        """The token's text for the settings: "" for the default; text that is not one
        token goes as typed (␣ read as a space), for the run to refuse with a message."""
        text = box.currentText()
        if not text:
            return ""
        token_id = box.token_id()
        tokenizer = self.session.tokenizer
        return tokenizer.from_display(text) if token_id is None else tokenizer.decode([token_id])

    def _show_token(self, box: TokenPicker, text: str) -> None:
        """The settings' token in its box; text that is not one token as it was typed."""
        ids = self.session.tokenizer.encode(text)
        box.show_token(ids[0] if len(ids) == 1 else None)
        if len(ids) > 1:
            box.setEditText(text)

    def _show_strips(self, clean_text: str, corrupted_text: str) -> None:
        """The two prompts' tokens, where they differ, and whether their lengths match: for
        the texts in the boxes, as typed (the settings take them on Enter or leaving)."""
        tokenizer = self.session.tokenizer
        clean, corrupted = tokenizer.encode(clean_text), tokenizer.encode(corrupted_text)
        differ = {i for i, (a, b) in enumerate(zip(clean, corrupted)) if a != b}  # noqa: B905
        for strip, ids in ((self.clean_strip, clean), (self.corrupted_strip, corrupted)):
            strip.set_tokens(
                tokenizer.displays(ids), ids, [tokenizer.token_bytes(i) for i in ids], differ
            )
        self.corrupt_position.setMaximum(max(len(clean) - 1, 0))
        if len(clean) != len(corrupted):
            self.pair_note.setText(
                f"clean has {len(clean)} tokens, corrupted {len(corrupted)}: patching "
                "compares position by position, so they must be equally long."
            )
            self.pair_note.setStyleSheet("color: #c92a2a; font-weight: 600;")
        elif not clean:  # nothing typed yet: nothing to compare
            self.pair_note.setText("")
        else:
            where = {0: "nowhere", 1: "at position "}.get(len(differ), "at positions ")
            marked = ", ".join(str(i) for i in sorted(differ))
            self.pair_note.setText(f"{len(clean)} tokens each; they differ {where}{marked}.")
            self.pair_note.setStyleSheet("color: #495057;")


def _row(*items: tuple[str | None, QWidget | None]) -> FlowLayout:
    """Labels and widgets left to right, onto a second line where the tab is narrow (a
    label and its widget stay together)."""
    row = FlowLayout(spacing=8)
    for text, widget in items:
        pair = QWidget()
        layout = QHBoxLayout(pair)
        layout.setContentsMargins(0, 0, 0, 0)
        for part in (QLabel(text) if text else None, widget):
            if part is not None:
                layout.addWidget(part)
        row.addWidget(pair)
    return row


def _combo(choices: dict[str, str], texts: dict[str, str] | None = None) -> QComboBox:
    combo = QComboBox()
    for key, text in choices.items():
        combo.addItem((texts or {}).get(key, text), key)
    return combo
