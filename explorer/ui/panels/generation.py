"""Generation one token at a time: append the predicted token (greedy, or sampled with a
temperature, top-k and a seed) and run again; Undo takes the last one back."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session
from explorer.state.app_state import GenerationSettings


class GenerationPanel(QWidget):
    def __init__(self, session: Session, generate_action, undo_action, parent=None):
        super().__init__(parent)
        self.session = session
        self.greedy = QRadioButton("Greedy (most likely)")
        self.sampled = QRadioButton("Sample")
        self.greedy.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.greedy)
        group.addButton(self.sampled)
        self.temperature = QDoubleSpinBox(minimum=0.05, maximum=5.0, singleStep=0.1, value=1.0)
        self.top_k = QSpinBox(minimum=0, maximum=50257, value=40)
        self.top_k.setSpecialValueText("all")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        form = QFormLayout()
        form.addRow(self.greedy)
        form.addRow(self.sampled)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
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
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.count)
        layout.addWidget(self.text)
        layout.addWidget(self.append_button)
        layout.addStretch(1)
        for widget in (self.temperature, self.top_k, self.seed):
            widget.valueChanged.connect(self._push_settings)
        self.greedy.toggled.connect(self._push_settings)
        session.generationChanged.connect(self._show)
        session.traceChanged.connect(self._show)
        self._push_settings()
        self._show()

    def settings(self) -> GenerationSettings:
        if self.greedy.isChecked():
            return GenerationSettings(seed=self.seed.value())
        return GenerationSettings(
            self.temperature.value(), self.top_k.value() or None, self.seed.value()
        )

    def _push_settings(self) -> None:
        sampling = self.sampled.isChecked()
        for widget in (self.temperature, self.top_k):
            widget.setEnabled(sampling)
        self.session.set_generation(self.settings())

    def _show(self) -> None:
        session = self.session
        n = len(session.state.generated)
        self.undo_button.setEnabled(n > 0)
        self.append_button.setEnabled(n > 0)
        self.count.setText(f"{n} generated token{'s' if n != 1 else ''}")
        # The prompt of the run shown, not what the prompt box holds now.
        prompt = _escape(session.state.ran_text or "")
        generated = _escape(session.generated_text())
        self.text.setHtml(
            f"<span style='color:#495057'>{prompt}</span>"
            f"<span style='color:#1971c2; font-weight:600'>{generated}</span>"
        )


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
    )
