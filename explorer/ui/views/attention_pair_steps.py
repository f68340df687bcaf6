"""The six steps from one head's query at position t and key at position s to the attention
output, one StepPanel each: the operation with this prompt's shapes, the lines of the
project's MultiHeadAttention that compute it (read from the source), plots and numbers.
Everything shown comes from an AttentionPair, which reads it from the trace."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.ui.widgets.bar_chart import BarChart
from explorer.ui.widgets.heatmap import TokensByDims
from explorer.ui.widgets.step_panel import StepPanel
from gpt_core import Trace, stage_key
from gpt_core.analysis import AttentionPair, attention_source_lines

SOURCE_FILE = "gpt_core/model/attention.py"
QUERY, KEY, RESULT, OTHER = "#1c7ed6", "#e8590c", "#5f3dc4", "#adb5bd"
WEIGHTED_VALUES_MIN_PX = 180

# (title, the steps of gpt_core's ATTENTION_STEPS whose source lines it shows, the stages
# whose operation it shows), in the order the forward runs them.
STEPS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "1 · Where q, k and v come from",
        ("project queries", "project keys", "project values", "split heads"),
        ("attn/queries", "attn/keys", "attn/values"),
    ),
    ("2 · q_t · k_s, scaled by 1/√d_head", ("scores", "scale"), ("attn/scores",)),
    ("3 · Row t of the scores, and the causal mask", ("mask",), ()),
    ("4 · Softmax: row t becomes the weights", ("softmax",), ("attn/weights",)),
    ("5 · Token t's context vector in this head", ("weights @ values",), ("attn/context",)),
    ("6 · How the heads leave: concat → out_proj", ("concat heads", "out_proj"), ("attn/out",)),
)


def num(value: float) -> str:
    """Six significant digits, −∞ written out."""
    return "−∞" if value == -np.inf else f"{value:.6g}"


def _norm(vector: np.ndarray) -> str:
    return num(float(np.linalg.norm(np.asarray(vector, dtype=np.float64))))


class PairSteps(QWidget):
    """set_run() once a trace or block; show_pair() on every query, key or head change."""

    keyClicked = Signal(int)  # a key position picked in one of the rows

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.panels = [StepPanel(title, SOURCE_FILE) for title, _, _ in STEPS]
        sources = attention_source_lines()
        for panel, (_, steps, _) in zip(self.panels, STEPS, strict=True):
            lines = {(line.number, line.text) for step in steps for line in sources[step]}
            panel.source.set_lines(sorted(lines))
        self.panels[2].set_operation(["row t of [H, T, T]: columns s > t ← −∞"])  # any prompt
        self.notice = QLabel()  # what a switched-off head or skipped block changes
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #c92a2a; font-weight: 600;")
        self._make_plots()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.addWidget(self.notice)
        for panel in self.panels:
            layout.addWidget(panel)
        layout.addStretch(1)

    def _make_plots(self) -> None:
        one, two, three, four, five, six = self.panels
        self.inputs = BarChart("LayerNorm 1's output, rows t and s", "feature", "value")
        self.inputs.add_curve("t", "row t (→ q_t)", QUERY)
        self.inputs.add_curve("s", "row s (→ k_s, v_s)", KEY, Qt.PenStyle.DashLine)
        one.add_plot(self.inputs)
        self.qk = BarChart("q_t and k_s, feature by feature", "feature of the head", "value")
        self.qk.add_bars("q", "q_t", QUERY, -0.2, 0.4)
        self.qk.add_bars("k", "k_s", KEY, 0.2, 0.4)
        self.products = BarChart("their products q_i k_i", "feature of the head", "product")
        self.products.add_bars("products", "q_i k_i", RESULT)
        for plot in (self.qk, self.products):
            two.add_plot(plot)
        keys = "key position s"
        self.row = BarChart("row t of the scaled scores · grey: −∞ (masked)", keys, "score")
        self.row.add_bars("scores", "score", RESULT)
        three.add_plot(self.row)
        self.exps = BarChart("e^(score − row max), s ≤ t", keys, "exp")
        self.exps.add_bars("exps", "e^(score − max)", RESULT)
        self.weights = BarChart("weights w_ts = e^(…) / Σ e^(…) · grey: 0", keys, "weight")
        self.weights.add_bars("weights", "weight", RESULT)
        for plot in (self.exps, self.weights):
            four.add_plot(plot)
        self.row.placeClicked.connect(self.keyClicked)
        self.exps.placeClicked.connect(self.keyClicked)
        self.weights.placeClicked.connect(self.keyClicked)
        self.weighted = TokensByDims()  # w_ts v_s, one row per key
        self.weighted.setMinimumHeight(WEIGHTED_VALUES_MIN_PX)
        self.weighted.clicked.connect(lambda row, col: self.keyClicked.emit(row))
        self.context = BarChart("their sum, feature by feature", "feature of the head", "value")
        self.context.add_bars("sum", "Σ_s w_ts v_s", RESULT)
        self.context.add_curve("run", "the run's context vector", KEY, Qt.PenStyle.DashLine)
        for plot in (self.weighted, self.context):
            five.add_plot(plot)
        self.concat = BarChart("the heads' context vectors side by side", "feature", "value")
        self.concat.add_bars("others", "other heads", OTHER, width=1.0)
        self.concat.add_bars("head", "this head", KEY, width=1.0)
        self.out = BarChart("attn/out row t, and this head's share", "feature", "value")
        self.out.add_bars("out", "attn/out[t]", OTHER, width=1.0)
        self.out.add_bars("share", "this head's share", KEY, width=1.0)
        for plot in (self.concat, self.out):
            six.add_plot(plot)

    # --- a new trace or block ---
    def set_run(self, trace: Trace, layer: int) -> None:
        """The operations with this prompt's shapes, and the places along each axis."""
        for panel, (_, _, stages) in zip(self.panels, STEPS, strict=True):
            if stages:
                panel.set_operation([trace.stage(stage_key(s, layer)).operation for s in stages])
        cfg = trace.config
        for plot in (self.inputs, self.concat, self.out):
            plot.set_numbered(cfg.emb_dim)
        for plot in (self.qk, self.products, self.context):
            plot.set_numbered(cfg.head_dim)
        for plot in (self.row, self.exps, self.weights):
            plot.set_places(trace.position_labels)

    # --- one pair ---
    def show_pair(
        self,
        pair: AttentionPair,
        trace: Trace,
        switch_mode: str,
        out_proj_ready: bool,
    ) -> None:
        """switch_mode: what switching the head off would do ("zero" or "mean");
        out_proj_ready: False while out_proj's weights are being read."""
        labels = trace.position_labels
        t, s = pair.query, pair.key
        self._show_notice(pair, trace)
        self._show_inputs(pair, trace, labels)
        self._show_dot(pair)
        self._show_row(pair, labels)
        self._show_softmax(pair)
        self._show_context(pair, labels, trace.interventions.mode)
        if out_proj_ready:
            self._show_heads_leaving(pair, trace, switch_mode)
        else:
            for plot in (self.concat, self.out):
                for key in plot.bars:
                    plot.set_bars(key, np.zeros(0))
            self.panels[5].set_numbers("Reading out_proj's weights from the model…")
        for plot in (self.row, self.exps, self.weights):
            plot.set_marker(s, also=(t,))
        self.inputs.set_title(f"LayerNorm 1's output, rows t = {labels[t]} and s = {labels[s]}")

    def _show_notice(self, pair: AttentionPair, trace: Trace) -> None:
        notes = []
        if pair.ablated:
            what = "set to 0" if trace.interventions.mode == "zero" else "replaced by its mean"
            notes.append(
                f"Head {pair.head} is switched off in this run: it still computes steps 1–5, "
                f"but its context vector is {what} before out_proj (steps 5 and 6)."
            )
        if pair.layer in trace.interventions.skip_layers:
            notes.append(
                f"Block {pair.layer} is skipped in this run: it computes all of this, but "
                "passes its input on unchanged, so none of it reaches the residual stream."
            )
        self.notice.setText(" ".join(notes))
        self.notice.setVisible(bool(notes))

    def _show_inputs(self, pair: AttentionPair, trace: Trace, labels: Sequence[str]) -> None:
        rows = trace[stage_key("ln1/out", pair.layer)]  # [T, E]
        self.inputs.set_curve("t", rows[pair.query])
        self.inputs.set_curve("s", rows[pair.key])
        cfg, h = trace.config, pair.head
        d = cfg.head_dim
        self.panels[0].set_numbers(
            f"q_t = y[t] @ W_query[:, {h * d}:{(h + 1) * d}]: row t of LayerNorm 1's output "
            f"({cfg.emb_dim} numbers) times head {h}'s {d} columns of W_query → {d} numbers "
            f"(‖q_t‖ = {_norm(pair.q)}). k_s and v_s: row s times the same columns of W_key "
            f"and W_value (‖k_s‖ = {_norm(pair.k)}). t = {labels[pair.query]}, "
            f"s = {labels[pair.key]}."
        )

    def _show_dot(self, pair: AttentionPair) -> None:
        self.qk.set_bars("q", pair.q)
        self.qk.set_bars("k", pair.k)
        self.products.set_bars("products", pair.products)
        d = len(pair.q)
        text = (
            f"Σ_i q_i k_i = <b>{num(pair.dot)}</b> (the dot product) × 1/√{d} = "
            f"{num(pair.scale)} → scaled score <b>{num(pair.score)}</b>. The model scales "
            "q before the product, which gives the same number."
        )
        if pair.masked:
            text += "<br>s > t: the mask replaces this score with −∞ (step 3)."
        self.panels[1].set_numbers(text)

    def _show_row(self, pair: AttentionPair, labels: Sequence[str]) -> None:
        t, n = pair.query, len(pair.row)
        visible = pair.row[: t + 1]
        self.row.set_bars("scores", visible)
        masked = np.arange(t + 1, n)
        self.row.set_missing(masked)
        text = f"Row t = {labels[t]} holds {t + 1} scores, s = 0 … {t}, from "
        text += f"{num(float(visible.min()))} to {num(float(visible.max()))}. "
        text += f"Key s = {labels[pair.key]}: <b>{num(float(pair.row[pair.key]))}</b>."
        if len(masked):
            text += f" The {len(masked)} keys after t (s = {t + 1} … {n - 1}) are set to −∞."
        else:
            text += " t is the last token: no key comes after it, none is masked."
        text += (
            "<br><i>Why:</i> position t predicts token t + 1, so it must not read the tokens "
            "after it; a score of −∞ gives weight e^−∞ = 0 in the softmax."
        )
        self.panels[2].set_numbers(text)

    def _show_softmax(self, pair: AttentionPair) -> None:
        t = pair.query
        self.exps.set_bars("exps", pair.exps)
        self.weights.set_bars("weights", pair.weights_row[: t + 1])
        self.weights.set_missing(np.arange(t + 1, len(pair.row)))
        recomputed = pair.exps / pair.exp_sum  # [t + 1]
        difference = float(np.max(np.abs(recomputed - pair.weights_row[: t + 1])))
        if pair.masked:
            weight = "w_ts = <b>0</b>: s is masked"
        else:
            weight = (
                f"w_ts = e^({num(pair.score)} − {num(pair.row_max)}) / {num(pair.exp_sum)} "
                f"= <b>{num(float(recomputed[pair.key]))}</b>"
            )
        self.panels[3].set_numbers(
            f"Row max m = {num(pair.row_max)}, subtracted from every score first: each "
            "e^(score − m) is then at most 1 and cannot overflow, and the weights do not "
            f"change (e^−m cancels in the division). Σ_s e^(score_s − m) = "
            f"<b>{num(pair.exp_sum)}</b>. {weight}; the weights of row t sum to 1.<br>"
            f"These are row t of the head's weights heatmap, as the run recorded them: "
            f"largest difference {difference:.2g}."
        )

    def _show_context(self, pair: AttentionPair, labels: Sequence[str], run_mode: str) -> None:
        t, s = pair.query, pair.key
        self.weighted.set_tokens_dims(
            pair.weighted_values.astype(np.float32),
            labels[: t + 1],
            "w_ts · v_s, one row per key s ≤ t",
            s if s <= t else None,
        )
        self.weighted.keep_labels(rows=(s, t) if s <= t else (t,))
        total = pair.weighted_values.sum(0)  # [d_head]
        self.context.set_bars("sum", total)
        self.context.set_curve("run", pair.context)
        difference = float(np.max(np.abs(total - pair.context)))
        share = "0 (masked)" if pair.masked else _norm(pair.weighted_values[s])
        text = (
            f"c_t = Σ_{{s ≤ t}} w_ts v_s: the {t + 1} weighted values above, summed feature "
            f"by feature → {len(total)} numbers, ‖c_t‖ = <b>{_norm(total)}</b>. "
            f"Key s = {labels[s]} adds ‖w_ts v_s‖ = {share}. "
        )
        if pair.ablated:
            what = "zeros" if run_mode == "zero" else "its mean over the positions"
            text += f"The run replaced it by {what} (dashed): this head is switched off."
        else:
            text += f"The run's context vector (dashed): largest difference {difference:.2g}."
        self.panels[4].set_numbers(text)

    def _show_heads_leaving(self, pair: AttentionPair, trace: Trace, switch_mode: str) -> None:
        cfg, h = trace.config, pair.head
        d, E = cfg.head_dim, cfg.emb_dim
        concat = trace[stage_key("attn/context", pair.layer)][pair.query].reshape(E)  # [E]
        others = concat.copy()
        others[h * d : (h + 1) * d] = 0.0
        self.concat.set_bars("others", others)
        self.concat.set_bars("head", concat[h * d : (h + 1) * d], first=h * d)
        self.out.set_bars("out", pair.attn_out_trace)
        self.out.set_bars("share", pair.head_out)
        difference = float(np.max(np.abs(pair.attn_out - pair.attn_out_trace)))
        off = (
            f"zeroes its {d} numbers of the concatenation"
            if switch_mode == "zero"
            else f"replaces its {d} numbers of the concatenation by its mean context vector"
        )
        result = (
            "attn/out loses this share, the bias stays."
            if switch_mode == "zero"
            else "attn/out gets the share of the head's mean context vector instead of this one."
        )
        self.panels[5].set_numbers(
            f"concat: the {cfg.n_heads} heads' context vectors side by side → {E} numbers "
            f"(head {h}: features {h * d} … {(h + 1) * d - 1}, orange). @ out_proj.weightᵀ "
            f"[{E}, {E}] + bias [{E}] → attn/out[t], recomputed here: largest difference from "
            f"the run's {difference:.2g}. Head {h}'s share, c_t @ its {d} rows of "
            f"out_proj.weightᵀ: ‖share‖ = <b>{_norm(pair.head_out)}</b> of "
            f"‖attn/out[t]‖ = {_norm(pair.attn_out_trace)}.<br>Switching head {h} off {off} "
            "before out_proj, as the switches do (zeroing after out_proj would be the common "
            f"bug): {result}"
        )
