"""Generation one token at a time: append the predicted token (greedy, or drawn with a
temperature, top-k, top-p and a seed) and run again; Undo takes the last one back. Below,
the distribution the next token is drawn from, redrawn as the settings move."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session
from explorer.ui.widgets.sampling_chart import (
    SamplingControls,
    SamplingPanel,
    settings_text,
)


class GenerationPanel(QWidget):
    def __init__(self, session: Session, generate_action, undo_action, parent=None):
        super().__init__(parent)
        self.session = session
        self.controls = SamplingControls(session)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=session.state.generation.seed)
        self.seed.setToolTip("the n-th generated token is drawn with seed + n")
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Seed", self.seed)
        self.next_button = QPushButton("Next token")
        self.next_button.setToolTip("Append the next token and run again (Ctrl+G)")
        self.next_button.clicked.connect(generate_action.trigger)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Remove the last generated token (Ctrl+Shift+G)")
        self.undo_button.clicked.connect(undo_action.trigger)
        self.append_button = QPushButton("Copy into prompt")
        self.append_button.setToolTip("Make the generated text part of the prompt you can edit")
        self.append_button.clicked.connect(session.adopt_generated)
        buttons = QHBoxLayout()
        buttons.addWidget(self.next_button)
        buttons.addWidget(self.undo_button)
        self.text = QTextEdit(readOnly=True)
        self.text.setMaximumHeight(110)
        self.text.setPlaceholderText("Generated tokens appear here, after the prompt.")
        self.count = QLabel()
        self.count.setWordWrap(True)
        self.distribution = SamplingPanel()
        layout = QVBoxLayout(self)
        layout.addWidget(self.controls)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.count)
        layout.addWidget(self.text)
        layout.addWidget(self.append_button)
        layout.addWidget(self.distribution, 1)
        self.seed.valueChanged.connect(self._push_seed)
        session.generationChanged.connect(self._show)
        session.traceChanged.connect(self._show)
        session.samplingChanged.connect(self._follow_settings)
        self._show()

    def _push_seed(self, seed: int) -> None:
        self.session.set_generation(replace(self.session.state.generation, seed=seed))

    def _follow_settings(self) -> None:
        self.seed.blockSignals(True)
        self.seed.setValue(self.session.state.generation.seed)
        self.seed.blockSignals(False)
        self._show_distribution()

    def _show(self) -> None:
        session = self.session
        n = len(session.state.generated)
        self.undo_button.setEnabled(n > 0)
        self.append_button.setEnabled(n > 0)
        count = f"{n} generated token{'s' if n != 1 else ''}"
        if n:
            last = session.state.draws[-1]
            token = session.tokenizer.display(last.token_id)
            count += (
                f"; the last, “{token}”, was drawn at p = {last.probability:.4g} with "
                f"{settings_text(last.settings)}"
            )
        self.count.setText(count)
        # The prompt of the run shown, not what the prompt box holds now.
        prompt = _escape(session.state.ran_text or "")
        generated = _escape(session.generated_text())
        self.text.setHtml(
            f"<span style='color:#495057'>{prompt}</span>"
            f"<span style='color:#1971c2; font-weight:600'>{generated}</span>"
        )
        self._show_distribution()

    def _show_distribution(self) -> None:
        """What the next token will be drawn from: the last position's logits of the run
        shown, with the settings now."""
        session, trace = self.session, self.session.trace
        if trace is None:
            self.distribution.show_message("Next token", "Run a prompt to see its distribution.")
            return
        last = trace.n_tokens - 1
        try:
            distribution = session.sampling_distribution(last)
        except ValueError as exc:
            self.distribution.show_message("Next token", str(exc))
            return
        title = f"The next token is drawn from · position {last} “{trace.token_strings[last]}”"
        self.distribution.show_distribution(title, distribution, session.tokenizer, None)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
    )
