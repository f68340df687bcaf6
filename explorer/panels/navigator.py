"""The model as a clickable tree, in data-flow order: each node with its tensor's shape for
the current prompt and its parameter count; blocks can be switched off with their box."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ..session import Session

# step kind -> (navigator label, module whose parameters it counts; "{i}" is the block)
_NODES = {
    "embeddings": ("Embeddings (token + position)", None),
    "ln1": ("norm1 · LayerNorm", "trf_blocks.{i}.norm1"),
    "attention": ("attention ({h} heads)", "trf_blocks.{i}.att"),
    "resid_mid": ("+ residual", None),
    "ln2": ("norm2 · LayerNorm", "trf_blocks.{i}.norm2"),
    "ff": ("feed-forward · GELU", "trf_blocks.{i}.ff"),
    "block_out": ("+ residual", None),
    "final_norm": ("final norm · LayerNorm", "final_norm"),
    "output": ("output head → next token", "out_head"),
}
_LIT = QBrush(QColor("#ffe8cc"))  # a stage the gradient has reached (backward replay)
_OFF = QColor("#c92a2a")


class Navigator(QWidget):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Stage", "Shape", "Parameters"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.itemClicked.connect(self._clicked)
        self.tree.itemChanged.connect(self._item_changed)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.summary)
        self.step_items: list[QTreeWidgetItem] = []
        self.block_items: list[QTreeWidgetItem] = []
        self.step_index: dict[tuple[str, int | None], int] = {}
        self.lit: set[int] = set()  # steps lit by the backward replay
        self._syncing = False
        session.modelChanged.connect(self.rebuild)
        session.traceChanged.connect(self._update_shapes)
        session.selectionChanged.connect(self._sync_selection)
        session.interventionsChanged.connect(self._sync_switches)
        session.replayChanged.connect(self._light_replay)
        self.rebuild()

    def rebuild(self) -> None:
        session = self.session
        self._syncing = True
        self.tree.clear()
        self.step_items, self.block_items = [], []
        if session.config is None:
            self._syncing = False
            return
        counts = session.param_counts.by_module
        cfg = session.config
        self.step_index = {(s.kind, s.layer): i for i, s in enumerate(session.steps)}
        for index, step in enumerate(session.steps):
            label, module = _NODES[step.kind]
            label = label.format(h=cfg.n_heads)
            params = ""
            if step.kind == "embeddings":
                params = f"{counts['tok_emb'] + counts['pos_emb']:,}"
            elif module:
                params = f"{counts[module.format(i=step.layer)]:,}"
            if step.layer is not None:
                if step.kind == "ln1":
                    block = QTreeWidgetItem(
                        self.tree,
                        [f"Block {step.layer}", "", f"{counts[f'trf_blocks.{step.layer}']:,}"],
                    )
                    block.setFlags(block.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    block.setCheckState(0, Qt.CheckState.Checked)
                    block.setToolTip(0, "Untick to skip this block: it passes its input through")
                    block.setData(0, Qt.ItemDataRole.UserRole, ("block", step.layer))
                    self.block_items.append(block)
                item = QTreeWidgetItem(self.block_items[-1], [label, "", params])
            else:
                item = QTreeWidgetItem(self.tree, [label, "", params])
            item.setData(0, Qt.ItemDataRole.UserRole, ("step", index))
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
            self.step_items.append(item)
        self.tree.expandAll()
        for column in range(3):
            self.tree.resizeColumnToContents(column)
        # Wide enough for all three columns: the parameter counts are half the point.
        width = sum(self.tree.columnWidth(c) for c in range(3)) + 40
        self.setMinimumWidth(min(width, 380))
        c = session.param_counts
        self.summary.setText(
            f"<b>{session.weights_label}</b><br>{c.total:,} parameters "
            f"({c.tied_total:,} with the output head tied to the token embedding)<br>"
            f"{c.float32_megabytes:,.2f} MB in float32 · {cfg.n_layers} blocks × "
            f"{cfg.n_heads} heads · width {cfg.emb_dim} · context {cfg.context_length:,}"
        )
        self._syncing = False
        self._update_shapes()
        self._sync_selection()
        self._sync_switches()

    def _update_shapes(self) -> None:
        trace = self.session.trace
        for step, item in zip(self.session.steps, self.step_items, strict=True):
            shape = ""
            if trace is not None:
                if step.kind == "output":
                    shape = f"[{trace.n_tokens}, {trace.config.vocab_size}]"
                elif step.kind == "attention":
                    shape = str(list(trace.stage(step.keys[0]).shape))
                else:
                    shape = str(list(trace.stage(step.main_key).shape))
            item.setText(1, shape)
        self.tree.resizeColumnToContents(1)

    def _sync_selection(self) -> None:
        if self.step_items:
            self._syncing = True
            self.tree.setCurrentItem(self.step_items[self.session.selection.step])
            self._syncing = False

    def _sync_switches(self) -> None:
        self._syncing = True
        skipped = self.session.interventions.skip_layers
        heads = self.session.interventions.ablate_heads
        for layer, item in enumerate(self.block_items):
            off = layer in skipped
            item.setCheckState(0, Qt.CheckState.Unchecked if off else Qt.CheckState.Checked)
            item.setText(0, f"Block {layer}" + (" · skipped" if off else ""))
            item.setForeground(0, _OFF if off else self.palette().text().color())
            n_off = sum(1 for l_, _ in heads if l_ == layer)
            attention = self.step_items[self.step_index[("attention", layer)]]
            text = _NODES["attention"][0].format(h=self.session.config.n_heads)
            attention.setText(0, text + (f" · {n_off} off" if n_off else ""))
            attention.setForeground(0, _OFF if n_off else self.palette().text().color())
        self._syncing = False

    def _light_replay(self) -> None:
        """Light up the steps the gradient has reached, as far as the replay has got."""
        session, lit = self.session, set()
        if session.backward is not None:
            for key, _ in session.backward.backward.order[: session.replay_position]:
                lit.add(session.step_of_stage(key))
        self.set_lit(lit)

    def set_lit(self, step_indices: set[int]) -> None:
        self.lit = step_indices
        for index, item in enumerate(self.step_items):
            for column in range(3):
                item.setBackground(column, _LIT if index in step_indices else QBrush())

    def _clicked(self, item: QTreeWidgetItem, column: int) -> None:
        kind, value = item.data(0, Qt.ItemDataRole.UserRole)
        if kind == "step":
            self.session.select_step(value)
        else:
            self.session.select_layer(value)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._syncing or column != 0:
            return
        kind, value = item.data(0, Qt.ItemDataRole.UserRole)
        if kind == "block":
            want_on = item.checkState(0) == Qt.CheckState.Checked
            if want_on == (value in self.session.interventions.skip_layers):
                self.session.toggle_layer(value)
