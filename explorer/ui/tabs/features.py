"""The Features tab: what a sparse autoencoder reads at its site for the run on screen.

Each token's top features (id, activation), L0 and reconstruction error, the explained
variance, a tokens × top-features heatmap, and the splice losses (clean, spliced, site
zeroed, share recovered); a click on a feature opens its card (activations, logit effect,
density, top contexts of a corpus scan, switches). Before an SAE is loaded it says how
to load one. The tab draws the state; the session's feature jobs do the work.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session
from explorer.state import features as fs
from explorer.ui.widgets.feature_card import FeatureCardWidget, TopContext
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.layout import VERTICAL, adaptive_splitter, scrolled, splitter, stack
from explorer.ui.widgets.tables import NumberItem, caption, read_only_table

TOP_COLUMNS = 5  # each token's top features in the table
FIRST_FEATURE_COLUMN = 4  # "#", token, L0, error, then the features
MIN_HEIGHT = 560  # the content's least height: below it the tab scrolls
CARD_MIN_PX = 340
EMPTY_TEXT = (
    "<h3>No sparse autoencoder loaded</h3>"
    "<p>A sparse autoencoder (SAE) reads one activation site of the model and turns each "
    "token's vector into a few active <i>features</i>. Load one with <b>Model ▸ Sparse "
    "autoencoder…</b> (or the button below): a folder in SAELens's layout (cfg.json + "
    "sae_weights.safetensors), <code>REPO:FOLDER</code> from the Hugging Face hub, or one of "
    "the public GPT-2 small releases.</p>"
    "<p>Then this tab shows which features fire on each token of the run on screen, how "
    "well the SAE reconstructs the activation, what each feature writes, where it fires "
    "in a corpus, and what the model does with a feature switched off or pushed.</p>"
)


class FeaturesView(QWidget):
    job_kind = "features"  # the job a run with an SAE loaded starts (a key of JOB_KINDS)
    run_button = None

    def __init__(self, session: Session, load_action: QAction, parent=None):
        super().__init__(parent)
        self.session = session
        self.columns = np.zeros(0, dtype=np.int64)  # the heatmap's features
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        empty_page = _empty_page(self.empty, load_action)

        self.summary = caption(rich=True)
        self.losses = caption(rich=True)
        self.scan_note = caption()
        self.scan_button = QToolButton()
        self.scan_button.setText("Scan a corpus…")
        self.scan_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.scan_button)
        menu.addAction("A text file…", lambda: self.pick_corpus(folder=False))
        menu.addAction("A folder of .txt files…", lambda: self.pick_corpus(folder=True))
        self.scan_button.setMenu(menu)
        self.heatmap = Heatmap()
        self.heatmap.clicked.connect(lambda row, col: self.open_card(int(self.columns[col])))
        self.table = read_only_table(
            ["#", "token", "L0", "error", *(f"top {i + 1}" for i in range(TOP_COLUMNS))]
        )
        self.table.horizontalHeaderItem(3).setToolTip("‖x − x̂‖² / ‖x − x̄‖² at this token")
        self.table.cellClicked.connect(self._cell_clicked)
        self.table.verticalHeader().setVisible(False)
        self.card = FeatureCardWidget()
        self.card.ablateToggled.connect(session.features.toggle_ablate)
        self.card.steerChanged.connect(session.features.steer)
        scan_row = QHBoxLayout()
        scan_row.addWidget(self.scan_button)
        scan_row.addWidget(self.scan_note, 1)
        self.heatmap.setMinimumHeight(220)
        self.table.setMinimumHeight(150)
        self.card.setMinimumWidth(CARD_MIN_PX)
        left = splitter(VERTICAL, self.heatmap, self.table, stretch=(3, 2))
        # the card beside the heatmap and table where the table shows all its columns, else
        # below them (the threshold follows the table's width: _fill_table)
        self.split = adaptive_splitter(2 * CARD_MIN_PX, left, self.card, stretch=(3, 2))
        content = stack(
            self.summary, self.losses, scan_row,
            (self.split, 1),
        )  # fmt: skip
        content.setMinimumHeight(MIN_HEIGHT)
        self.pages = QStackedWidget()
        self.pages.addWidget(empty_page)
        self.pages.addWidget(scrolled(content))  # a small screen scrolls, nothing squeezed
        QVBoxLayout(self).addWidget(self.pages)
        session.featuresChanged.connect(self.refresh)
        session.traceChanged.connect(self.refresh)
        session.features.set_shown(False)  # until the tab is shown
        self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.session.features.set_shown(True)

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.session.features.set_shown(False)

    # ------------------------------------------------------------------ asking
    def open_card(self, feature: int) -> None:
        self.session.features.open_card(feature)

    def _cell_clicked(self, row: int, col: int) -> None:
        result = self.session.state.features.result
        k = col - FIRST_FEATURE_COLUMN
        if result is not None and k >= 0 and result.run.readout.top_acts[row, k] > 0:
            self.open_card(int(result.run.readout.top_ids[row, k]))

    def pick_corpus(self, folder: bool) -> None:
        if folder:
            path = QFileDialog.getExistingDirectory(self, "A folder of .txt files")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "A text file", "", "Text (*.txt);;All (*)")
        if path:
            self.session.features.scan(path)

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        state = self.session.state
        loaded = state.features.loaded
        if loaded is None or loaded.misfit:
            self.empty.setText(EMPTY_TEXT if loaded is None else _misfit_text(loaded))
            self.pages.setCurrentIndex(0)
            return
        self.pages.setCurrentIndex(1)
        sae = loaded.sae
        self.summary.setText(
            f"<b>{html.escape(sae.source)}</b> · reads <code>{sae.hook_name}</code> · "
            f"{sae.d_sae:,} features · {sae.architecture}"
        )
        result = state.features.result
        current = result is not None and result.key == fs.current_key(state)
        self._draw_scan_note()
        if not current:
            self._clear("Run a prompt to see its features." if state.result is None
                        else "Reading the features…")  # fmt: skip
        else:
            self._draw(result)
        self._draw_card(result if current else None)

    def _clear(self, text: str) -> None:
        self.losses.setText(text)
        self.columns = np.zeros(0, dtype=np.int64)
        self.heatmap.set_matrix(np.zeros((1, 1)), [""], [""], title="")
        self.table.setRowCount(0)

    def _draw(self, result: fs.FeatureResult) -> None:
        readout, losses = result.run.readout, result.run.losses
        text = (
            f"explained variance {readout.explained_variance:.3f} · mean L0 "
            f"{readout.l0.mean():.1f} · {result.seconds * 1000:.0f} ms"
        )
        if losses is not None:
            text += (
                f"<br>Next-token loss: clean {losses.clean:.4f} · spliced (SAE's "
                f"reconstruction at the site) {losses.spliced:.4f} · site zeroed "
                f"{losses.zero:.4f} · <b>recovered {losses.recovered:.1%}</b>"
            )
            if losses.changed is not None:
                text += f" · with the feature switches {losses.changed:.4f}"
        self.losses.setText(text)
        tokens = self._row_tokens(result)
        self.columns = fs.heatmap_columns(readout)
        matrix = fs.heatmap_matrix(readout, self.columns)
        if not len(self.columns):
            matrix = np.zeros((readout.n_tokens, 1), dtype=np.float32)
        labels = [f"{t} {token}" for t, token in enumerate(tokens)]
        self.heatmap.set_matrix(
            matrix, labels, [str(f) for f in self.columns] or ["none active"],
            title="Activation: tokens × their top features (by id) · click one for its card",
            signed=False, hover=lambda r, c, v: self._hover(labels, r, c, v),
        )  # fmt: skip
        self._fill_table(readout, tokens)

    def _hover(self, labels, row: int, col: int, value: float) -> str:
        if not len(self.columns):
            return ""
        return f"token {labels[row]} · feature {int(self.columns[col])}: {value:.3f}"

    def _row_tokens(self, result: fs.FeatureResult) -> list[str]:
        return self.session.tokenizer.displays(list(result.key.run.token_ids))

    def _fill_table(self, readout, tokens: list[str]) -> None:
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(readout.n_tokens)
        for t, token in enumerate(tokens):
            cells = [
                NumberItem(t, str(t)),
                NumberItem(0, token),
                NumberItem(int(readout.l0[t]), str(int(readout.l0[t]))),
                NumberItem(float(readout.recon_fraction[t]), f"{readout.recon_fraction[t]:.3f}"),
            ]
            for k in range(TOP_COLUMNS):
                act = float(readout.top_acts[t, k]) if k < readout.top_acts.shape[1] else 0.0
                text = f"{int(readout.top_ids[t, k])}  ({act:.2f})" if act > 0 else ""
                cells.append(NumberItem(act, text))
            for c, item in enumerate(cells):
                table.setItem(t, c, item)
        table.resizeColumnsToContents()
        # every column in view: a feature cut at the right edge reads as another number
        header = table.horizontalHeader()
        bar = table.verticalScrollBar().sizeHint().width()
        table.setMinimumWidth(header.length() + bar + 2 * table.frameWidth())
        handle = self.split.handleWidth()
        self.split.set_side_by_side_from(table.minimumWidth() + handle + CARD_MIN_PX)

    def _draw_scan_note(self) -> None:
        scan = self.session.state.features.scan
        if scan is None:
            self.scan_note.setText(
                "No corpus scanned: scan one for each feature's top contexts (cached, resumable)."
            )
            return
        result = scan.result
        how = "from the cache" if result.from_cache else f"{result.tokens_per_second:,.0f} tokens/s"
        self.scan_note.setText(f"Corpus: {scan.corpus} · {result.tokens:,} tokens · {how}")

    def _draw_card(self, result: fs.FeatureResult | None) -> None:
        features = self.session.state.features
        feature = features.feature
        self.card.show_feature(feature)
        if feature is None:
            return
        if result is not None:
            readout, ids = result.run.readout, list(result.key.run.token_ids)
            tokenizer = self.session.tokenizer
            self.card.show_acts(
                tokenizer.displays(ids), ids, [tokenizer.token_bytes(i) for i in ids],
                readout.feature_acts(feature), readout.density(feature),
            )  # fmt: skip
        steer = dict(features.switches.steer)
        self.card.show_switches(feature in features.switches.ablate, steer.get(feature, 0.0))
        logits = features.card.card if features.card is not None else None
        # until the card's logit effect is read, no rows of the feature shown before
        self.card.show_logits(
            logits.logits_up if logits else (), logits.logits_down if logits else ()
        )
        self.card.show_contexts(*self._contexts(feature))

    def _contexts(self, feature: int) -> tuple[list[TopContext] | None, str]:
        scan = self.session.state.features.scan
        if scan is None:
            return None, "Scan a corpus (above) to see where this feature fires most."
        decode = self.session.tokenizer.decode
        found = [
            TopContext(act, [decode([int(i)]) for i in window], position)
            for act, window, position in fs.top_contexts(scan.result, feature)
        ]
        return found, "It never fired in the scanned corpus."


def _empty_page(text: QLabel, load_action: QAction) -> QWidget:
    """What the tab shows with no SAE (or one that no longer fits): `text`, a load button."""
    load = QPushButton("Load a sparse autoencoder…")
    load.clicked.connect(load_action.trigger)
    load_row = QHBoxLayout()
    load_row.addWidget(load)
    load_row.addStretch(1)
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.addWidget(text)
    layout.addLayout(load_row)
    layout.addStretch(1)
    return page


def _misfit_text(loaded: fs.LoadedSAE) -> str:
    return (
        f"<h3>The SAE no longer fits this model</h3><p>{html.escape(loaded.sae.source)}: "
        f"{html.escape(loaded.misfit)}.</p><p>Load an SAE made for this model with "
        "<b>Model ▸ Sparse autoencoder…</b>, or load the model it was made for.</p>"
    )
