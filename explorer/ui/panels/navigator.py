"""The model as a clickable tree, in data-flow order: each node with its tensor's shape for
the current prompt and its parameter count; blocks can be switched off with their box, and
a section's weight matrices opened from its context menu."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session
from explorer.state.app_state import LoadedModel, section_of_stage
from explorer.ui.dialogs.weight_matrices import show_weights
from gpt_core.analysis.weight_matrices import section_matrices
from gpt_core.probe.sections import Section
from gpt_core.sae import site_of

_LIT = QBrush(QColor("#ffe8cc"))  # a stage the gradient has reached (backward replay)
_OFF = QColor("#c92a2a")
SCROLL_BAR_PX = 24  # the tree's frame and vertical scroll bar
STAGE_MIN_PX = 170  # the stage column's least width: "↳ q·k/√d → softmax" in a block


class Navigator(QWidget):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Stage", "Shape", "Parameters"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(14)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemClicked.connect(self._clicked)
        # The keys (↑ ↓ Home End) move the current item: the view follows it.
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.summary)
        self.section_items: list[QTreeWidgetItem] = []
        self.block_items: list[QTreeWidgetItem] = []
        self.lit: set[int] = set()  # sections lit by the backward replay
        self._syncing = False
        session.modelChanged.connect(self.rebuild)
        session.traceChanged.connect(self._update_shapes)
        session.sectionChanged.connect(self._sync_selection)
        session.interventionsChanged.connect(self._sync_switches)
        session.replayChanged.connect(self._light_replay)
        session.featuresChanged.connect(self._sync_switches)
        self.rebuild()

    def rebuild(self) -> None:
        session = self.session
        self._syncing = True
        self.tree.clear()
        self.section_items, self.block_items = [], []
        model = session.state.model
        if model is None:
            self._syncing = False
            return
        for index, section in enumerate(model.sections):
            if section.layer is not None and section.layer == len(self.block_items):
                self.block_items.append(self._block_item(section.layer))
            parent = self.tree if section.layer is None else self.block_items[-1]
            item = QTreeWidgetItem(parent, [self._label(section), "", self._count(section)])
            item.setData(0, Qt.ItemDataRole.UserRole, ("section", index))
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
            self.section_items.append(item)
        self.tree.expandAll()
        # Room for the parameter counts, in full: they are half the point. On a narrow dock
        # the shapes give way (see _fit_columns) and long stage names elide (the tooltip
        # has them).
        self.setMinimumWidth(STAGE_MIN_PX + self._columns_px(2))
        self.summary.setText(_summary(model))
        self._syncing = False
        self._update_shapes()
        self._sync_selection()
        self._sync_switches()

    def _block_item(self, layer: int) -> QTreeWidgetItem:
        counts = self.session.state.model.counts.by_module
        block = QTreeWidgetItem(
            self.tree, [f"Block {layer}", "", f"{counts[f'trf_blocks.{layer}']:,}"]
        )
        block.setFlags(block.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        block.setCheckState(0, Qt.CheckState.Checked)
        block.setData(0, Qt.ItemDataRole.UserRole, ("block", layer))
        return block

    def _label(self, section: Section) -> str:
        return section.spec.tree_label.format(heads=self.session.config.n_heads)

    def _count(self, section: Section) -> str:
        counts = self.session.state.model.counts.by_module
        modules = section.parameter_modules()
        return f"{sum(counts[m] for m in modules):,}" if modules else ""

    def _update_shapes(self) -> None:
        trace = self.session.trace
        for section, item in zip(self.session.sections, self.section_items, strict=True):
            shape = "" if trace is None else _shape(section, trace)
            item.setText(1, shape)
            item.setToolTip(0, f"{item.text(0)}: {shape}" if shape else item.text(0))
            item.setToolTip(1, shape)
        self._fit_columns()

    def _columns_px(self, *columns: int) -> int:
        """The width these columns need in full, with the tree's frame and scroll bar."""
        return sum(self.tree.sizeHintForColumn(c) for c in columns) + SCROLL_BAR_PX

    def _fit_columns(self) -> None:
        """On a dock too narrow for all three columns the shapes give way (each row's
        tooltip and the stage's header still give them), never the parameter counts."""
        self.tree.setColumnHidden(1, self.width() < self._columns_px(0, 1, 2))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _sync_selection(self) -> None:
        if self.section_items:
            self._syncing = True
            self.tree.setCurrentItem(self.section_items[self.session.selection.section])
            self._syncing = False

    def _sync_switches(self) -> None:
        self._syncing = True
        skipped = self.session.interventions.skip_layers
        heads = self.session.interventions.ablate_heads
        for layer, item in enumerate(self.block_items):
            off = layer in skipped
            item.setCheckState(0, Qt.CheckState.Unchecked if off else Qt.CheckState.Checked)
            item.setText(0, f"Block {layer}" + (" · skipped" if off else ""))
            item.setToolTip(0, f"{item.text(0)}: untick to skip the block (it passes its input "
                            "through)")  # fmt: skip
            item.setForeground(0, _OFF if off else self.palette().text().color())
        site = self._sae_section()
        for index, (section, item) in enumerate(zip(self.session.sections, self.section_items,
                                                    strict=True)):  # fmt: skip
            n_off = sum(1 for layer, _ in heads if layer == section.layer)
            n_off = n_off if section.name == "attention" else 0
            sae = "  ◆ SAE" if index == site[0] else ""
            item.setText(0, self._label(section) + (f" · {n_off} off" if n_off else "") + sae)
            item.setForeground(0, _OFF if n_off else self.palette().text().color())
            shape = item.text(1)
            tip = f"{item.text(0)}: {shape}" if shape else item.text(0)
            item.setToolTip(0, f"{tip} (the SAE reads {site[1]} here)" if sae else tip)
        self._syncing = False

    def _sae_section(self) -> tuple[int | None, str]:
        """The section that holds the loaded SAE's site, and its hook name."""
        sae = self.session.state.features.usable
        if sae is None:
            return None, ""
        key = site_of(sae.hook_name, self.session.config).key
        return section_of_stage(self.session.state, key), sae.hook_name

    def _light_replay(self) -> None:
        """Light up the sections the gradient has reached, as far as the replay has got."""
        state, lit = self.session.state, set()
        if state.gradients is not None:
            for key, _ in state.gradients.backward.order[: state.replay_position]:
                lit.add(section_of_stage(state, key))
        self.lit = lit
        for index, item in enumerate(self.section_items):
            for column in range(3):
                item.setBackground(column, _LIT if index in lit else QBrush())

    def _clicked(self, item: QTreeWidgetItem, column: int) -> None:
        what, value = item.data(0, Qt.ItemDataRole.UserRole)
        if what == "section":
            self.session.select_section(value)
        else:
            self.session.select_layer(value)

    def _current_changed(self, item: QTreeWidgetItem | None, _previous) -> None:
        """A section made current opens; a block heading made current waits for a click,
        so ↑ and ↓ can pass over it."""
        if self._syncing or item is None:
            return
        what, value = item.data(0, Qt.ItemDataRole.UserRole)
        if what == "section":
            self.session.select_section(value)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._syncing or column != 0:
            return
        what, value = item.data(0, Qt.ItemDataRole.UserRole)
        if what == "block":
            want_on = item.checkState(0) == Qt.CheckState.Checked
            if want_on == (value in self.session.interventions.skip_layers):
                self.session.toggle_layer(value)

    def weights_action(self, item: QTreeWidgetItem, menu: QMenu):
        """The context menu's "Weight matrices…" for a section that has any, else None."""
        what, value = item.data(0, Qt.ItemDataRole.UserRole)
        if what != "section" or not section_matrices(self.session.sections[value].name):
            return None
        action = menu.addAction(f"Weight matrices of {self.session.sections[value].title}…")
        action.triggered.connect(lambda: self._open_weights(value))
        return action

    def _context_menu(self, point) -> None:
        item = self.tree.itemAt(point)
        menu = QMenu(self)
        if item is not None and self.weights_action(item, menu) is not None:
            menu.exec(self.tree.viewport().mapToGlobal(point))

    def _open_weights(self, index: int) -> None:
        self.session.select_section(index)
        show_weights(self.session, self)


def _shape(section: Section, trace) -> str:
    """The shape of what the section shows, for the tree."""
    if section.shape_key is None:  # the token ids
        return f"[{trace.n_tokens}]"
    if section.spec.view == "output":  # the logits, of which the trace keeps a summary
        return f"[{trace.n_tokens}, {trace.config.vocab_size}]"
    return str(list(trace.stage(section.shape_key).shape))


def _summary(model: LoadedModel) -> str:
    c, cfg = model.counts, model.config
    return (
        f"<b>{model.label}</b><br>{c.total:,} parameters "
        f"({c.tied_total:,} with the output head tied to the token embedding)<br>"
        f"{c.float32_megabytes:,.2f} MB in float32 · {cfg.n_layers} blocks × "
        f"{cfg.n_heads} heads · width {cfg.emb_dim} · context {cfg.context_length:,}"
    )
