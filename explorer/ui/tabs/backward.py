"""The backward-step view: run one backward() on the current prompt and switches, then watch the
gradient travel from the loss back to the embeddings — its norm at every stage in the order
the backward pass reached it (replayable, lighting up the navigator), the per-token gradient
of the selected stage, and every parameter's gradient norm."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session, backward_summary
from explorer.ui.widgets.flow import FlowLayout
from explorer.ui.widgets.heatmap import Heatmap, TokensByDims
from explorer.ui.widgets.layout import adaptive_splitter, stack
from explorer.ui.widgets.layout import scrolled as scrolled_page
from explorer.ui.widgets.parameter_table import ParameterGradients
from explorer.ui.widgets.plots import LabelledPlot
from explorer.ui.widgets.token_picker import TokenPicker
from explorer.ui.widgets.token_strip import TokenStrip, scrolled
from gpt_core.probe.stages import short_label

_SMALLEST = 1e-30  # a zero gradient norm is drawn here on the log scale


SIDE_BY_SIDE_FROM = 900  # px: the flow plot beside the selected stage's gradient


class GradientsView(QWidget):
    """The centre's Backward step tab."""

    job_kind = "backward"  # the job its run_button starts (a key of JOB_KINDS)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self._targets_for = None  # (token ids, position) the target choices are for
        self._build_controls()
        self._build_flow()
        self._build_stage()
        self._lay_out()
        self._wire()
        self._new_backward()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.whole_prompt = QRadioButton("Whole-prompt next-token loss")
        self.whole_prompt.setChecked(True)
        self.one_token = QRadioButton("Loss of one token after the selected position:")
        self.target = TokenPicker(self.session.tokenizer, "the target")
        self.sgd = QCheckBox("then one SGD step, lr")
        self.lr = QDoubleSpinBox(
            decimals=4, minimum=0.0001, maximum=100.0, value=0.1, singleStep=0.05
        )
        self.train = QCheckBox("Training mode (dropout on), seed")
        self.train.setToolTip(
            "Run the step as in training: dropout zeroes a share of the activations (drop_rate) "
            "and scales the rest by 1/(1 − drop_rate); the masks are drawn right after "
            "torch.manual_seed(seed). The stage views then show each mask."
        )
        self.dropout_seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.dropout_seed.setToolTip(
            "The dropout masks' random seed: the same seed, the same masks"
        )
        self.run_button = QPushButton("Backward")
        self.run_button.setToolTip("One backward pass, current prompt and switches (Ctrl+B)")
        self.result = QLabel("Run a prompt, then press Backward.")
        self.result.setWordWrap(True)

    def _build_flow(self) -> None:
        # log10 of the norms on a linear axis labelled in decades: pyqtgraph's log mode
        # crowds the axis with minor labels.
        self.flow_plot = LabelledPlot(
            "‖∂loss/∂stage‖ at each stage",
            "stage, in backward's order",
            "gradient norm",
        )
        self.flow_plot.add_curve("norm", "‖∂loss/∂stage‖", "#1971c2")
        self.flow_curve = self.flow_plot.curves["norm"]
        self.reached_marker = pg.ScatterPlotItem(size=13, brush="#e8590c", pen=None)
        self.flow_plot.addItem(self.reached_marker)
        self.play_button = QPushButton()
        self._show_play(playing=False)
        self.back_button = QPushButton("◀ Step")
        self.step_button = QPushButton("Step ▶")
        self.speed = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=60, value=12)
        self.speed.setToolTip("Stages per second")
        self.speed.setMinimumWidth(80)  # a bare handle cannot be dragged to a speed
        self.reached = QLabel()
        self.reached.setWordWrap(True)
        self.timer = QTimer(self)

    def _build_stage(self) -> None:
        self.heatmap = Heatmap()  # an attention weight's gradient: tokens x tokens
        self.dims_heatmap = TokensByDims()  # any other stage's: tokens x dims
        self.saliency = TokenStrip()
        self.stage_note = QLabel()
        self.stage_note.setWordWrap(True)  # "… with respect to blocks/11/attn/weights."
        self.stage_view = QStackedWidget()  # nothing yet, or one of the two heatmaps
        self.empty = QLabel(
            "The gradient of the selected stage appears here after a backward step."
        )
        self.empty.setWordWrap(True)  # the tab may be narrow: the sentence wraps, whole
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color:#868e96;")
        for widget in (self.empty, self.heatmap, self.dims_heatmap):
            self.stage_view.addWidget(widget)
        self.params = ParameterGradients()

    def _lay_out(self) -> None:
        loss_row, step_row = FlowLayout(), FlowLayout()  # rows that wrap on a narrow screen
        for widget in (self.whole_prompt, self.one_token, self.target):
            loss_row.addWidget(widget)
        for widget in (self.sgd, self.lr, self.train, self.dropout_seed, self.run_button):
            step_row.addWidget(widget)
        replay = QHBoxLayout()
        for widget in (self.back_button, self.play_button, self.step_button):
            replay.addWidget(widget)
        replay.addWidget(QLabel("speed"))
        replay.addWidget(self.speed, 1)
        flow = stack(self.flow_plot, replay, self.reached)  # the label wraps on its own line
        stage = stack(
            self.stage_note,
            self.stage_view,
            QLabel("Gradient norm per token (saliency):"),
            (scrolled(self.saliency), 0),
        )
        tabs = QTabWidget()
        tabs.addTab(stage, "Selected stage")
        tabs.addTab(self.params, "Parameters")
        for part in (flow, tabs):  # their size hints are wider than they need to be
            part.setMinimumSize(240, 200)
        flow.setMinimumWidth(max(240, replay.minimumSize().width()))  # the replay row whole
        # side by side where both keep their plots readable, else stacked and scrolled
        split = adaptive_splitter(SIDE_BY_SIDE_FROM, flow, tabs, stretch=(1, 1))
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(loss_row)
        layout.addLayout(step_row)
        layout.addWidget(self.result)
        layout.addWidget(split, 1)
        stack(scrolled_page(page), owner=self)

    def _wire(self) -> None:
        session = self.session
        self.run_button.clicked.connect(self.run_backward)
        self.flow_plot.placeClicked.connect(self._open_stage)
        self.play_button.clicked.connect(self.toggle_play)
        self.back_button.clicked.connect(lambda: self.advance_replay(-1))
        self.step_button.clicked.connect(lambda: self.advance_replay(+1))
        self.speed.valueChanged.connect(self._set_speed)
        self.timer.timeout.connect(self._tick)
        self._set_speed(self.speed.value())
        self.saliency.positionClicked.connect(session.select_position)
        for signal in (session.traceChanged, session.positionChanged):
            signal.connect(self._fill_targets)
        session.traceChanged.connect(self._prompt_hint)
        session.gradientsChanged.connect(self._new_backward)
        session.replayChanged.connect(self._draw_replay)
        for signal in (session.sectionChanged, session.headChanged, session.positionChanged):
            signal.connect(self._draw_stage)

    # ------------------------------------------------------------------ running
    def run_backward(self) -> None:
        """One backward step for the chosen loss; a target that is not one token is a
        message, and nothing runs."""
        target = None
        if self.one_token.isChecked():
            target = self.target.token_id()
            if target is None:
                self.session.report("warning", self.target.problem)
                return
        self.session.run_backward(
            target,
            self.lr.value() if self.sgd.isChecked() else None,
            self.dropout_seed.value() if self.train.isChecked() else None,
        )

    def _fill_targets(self) -> None:
        """The likely next tokens after the selected position, the prompt's own next token
        first. The choice stays while the prompt and position do (switches only change the
        probabilities); one made for another prompt or position is dropped."""
        trace = self.session.trace
        if trace is None:
            self._targets_for = None
            self.target.reset()
            return
        position = self.session.position
        targets_for = (tuple(trace.token_ids.tolist()), position)
        kept = self.target.token_id() if targets_for == self._targets_for else None
        self._targets_for = targets_for
        ids = [int(i) for i in trace["logits/topk_ids"][position][:10]]
        probs = [float(p) for p in trace["logits/topk_probs"][position][:10]]
        labels = self.session.tokenizer.displays(ids)
        if position + 1 < trace.n_tokens:
            actual = int(trace.token_ids[position + 1])
            display = self.session.tokenizer.display(actual)
            known = dict(zip(ids, probs, strict=True))  # the top-k summary may lack it
            ids, labels = [actual, *ids], [f"{display}  (actual next)", *labels]
            probs = [known.get(actual), *probs]
        self.target.set_candidates(ids, labels, probs)
        if kept is not None:
            self.target.show_token(kept)

    # ------------------------------------------------------------------ showing
    def _new_backward(self) -> None:
        self._stop()
        trace = self.session.gradients
        if trace is None:
            self._clear()
            return
        info = trace.backward
        what = (
            "whole-prompt next-token loss"
            if info.target is None
            else (
                f"−log p(“{self.session.tokenizer.display(info.target[1])}” after position "
                f"{info.target[0]})"
            )
        )
        mode = (
            f"training mode, dropout seed {trace.dropout_seed}"
            if trace.training
            else "evaluation mode"
        )
        text = f"Loss ({what}; {mode}) on {trace.device.upper()}: {backward_summary(info)}"
        if not trace.interventions.is_empty:
            text += f" · switches: {trace.interventions.describe()}"
        self.result.setText(text)
        self.flow_plot.set_places([short_label(key) for key, _ in info.order])
        exponents = np.log10(np.maximum([n for _, n in info.order], _SMALLEST))
        exponents = exponents[np.isfinite(exponents)]  # a NaN norm has no place on the axis
        if not exponents.size:
            exponents = np.zeros(1)
            text += " · <b>every gradient norm is NaN or Inf</b>"
            self.result.setText(text)
        low, high = int(np.floor(exponents.min())), int(np.ceil(exponents.max()))
        decades = [(e, f"1e{e}") for e in range(low, high + 1)]
        self.flow_plot.getPlotItem().getAxis("left").setTicks([decades])
        self.flow_plot.setYRange(low, high, padding=0.05)
        self.params.show_params(info.params)
        self._draw_replay()
        self._draw_stage()

    def _clear(self) -> None:
        """No backward step (a new prompt, model or generated token): nothing of the last
        one stays, headings and axis labels included."""
        self.flow_curve.setData([], [])
        self.reached_marker.setData([], [])
        self.flow_plot.set_places([])
        for side in ("left", "bottom"):  # no numbers or stage names of a step not shown
            self.flow_plot.getPlotItem().getAxis(side).setTicks([[]])
        self._prompt_hint()
        self.params.setRowCount(0)
        self.stage_view.setCurrentIndex(0)
        self.stage_note.setText("")
        self.saliency.set_tokens([], [], [])
        self.reached.setText("")

    def _prompt_hint(self) -> None:
        if self.session.gradients is None:
            self.result.setText(
                "Run a prompt, then press Backward."
                if self.session.trace is None
                else "Press Backward for one backward pass from the loss."
            )

    def _open_stage(self, place: int) -> None:
        """A click on the flow opens the stage the gradient had reached there."""
        trace = self.session.gradients
        if trace is not None:
            self.session.open_stage(trace.backward.order[place][0])

    def _draw_replay(self) -> None:
        trace = self.session.gradients
        if trace is None:
            return
        order = trace.backward.order
        shown = self.session.state.replay_position
        norms = np.array([n for _, n in order[:shown]], dtype=np.float64)
        self.flow_plot.set_curve("norm", np.log10(np.maximum(norms, _SMALLEST)))
        if shown:
            key, norm = order[shown - 1]
            self.reached_marker.setData([shown - 1], [np.log10(max(norm, _SMALLEST))])
            self.reached.setText(f"{shown}/{len(order)} · reached <b>{key}</b> · norm {norm:.4g}")
        else:
            self.reached_marker.setData([], [])
            self.reached.setText(f"0/{len(order)} · at the loss")

    def _draw_stage(self) -> None:
        session, trace = self.session, self.session.gradients
        section = session.section
        if trace is None or section is None:
            return
        key = section.gradient_key
        grad = trace.grad(key)
        if grad is None:
            self.stage_note.setText(f"No gradient reached {key} (its block is skipped).")
            self.stage_view.setCurrentIndex(0)
            self.saliency.set_weights(None)
            return
        labels = trace.position_labels
        if grad.ndim == 3:  # attention weights [H, T, T]: the selected head's
            head = session.selection.head
            matrix = grad[head]  # [T, T]
            self.heatmap.set_matrix(
                matrix,
                labels,
                labels,
                signed=True,
                title=f"∂loss/∂ attention, layer {section.layer} head {head}",
            )
            self.stage_view.setCurrentWidget(self.heatmap)
        else:
            matrix = grad  # [T, D]
            self.dims_heatmap.set_tokens_dims(matrix, labels, f"∂loss/∂ {key}", session.position)
            self.stage_view.setCurrentWidget(self.dims_heatmap)
        self.stage_note.setText(f"Gradient of the loss with respect to {key}.")
        self._draw_saliency(trace, np.linalg.norm(matrix.astype(np.float64), axis=1))

    def _draw_saliency(self, trace, per_token: np.ndarray) -> None:
        ids = trace.token_ids.tolist()
        if self.saliency.ids != ids:
            tokenizer = self.session.tokenizer
            self.saliency.set_tokens(
                list(trace.token_strings), ids, [tokenizer.token_bytes(i) for i in ids]
            )
        self.saliency.set_weights(per_token)
        self.saliency.set_selected(self.session.position)

    # ------------------------------------------------------------------ replay
    def toggle_play(self) -> None:
        trace = self.session.gradients
        if trace is None:
            return
        if self.timer.isActive():
            self._stop()
            return
        if self.session.state.replay_position >= len(trace.backward.order):
            self.session.set_replay_position(0)
        self.timer.start()
        self._show_play(playing=True)

    def advance_replay(self, delta: int) -> None:
        self._stop()
        self.session.set_replay_position(self.session.state.replay_position + delta)

    def _stop(self) -> None:
        self.timer.stop()
        self._show_play(playing=False)

    def _show_play(self, playing: bool) -> None:
        """Play or Pause, with the style's media icons (no font has to hold a ⏸ glyph)."""
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setText("Pause" if playing else "Play")

    def _tick(self) -> None:
        trace = self.session.gradients
        if trace is None or self.session.state.replay_position >= len(trace.backward.order):
            self._stop()
            return
        self.session.set_replay_position(self.session.state.replay_position + 1)

    def _set_speed(self, stages_per_second: int) -> None:
        self.timer.setInterval(int(1000 / stages_per_second))
