"""The main window: it lays out the panels, turns the action table into menus, toolbar and
shortcuts, and forwards commands to the Session. It holds no model state of its own."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSlider,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from explorer.export.attention import export_shown, failure_text
from explorer.session.jobs.kinds import JOB_KINDS
from explorer.session.session import Session
from explorer.ui.actions import ACTIONS
from explorer.ui.dialogs.export import ExportDialog, ExportRequest
from explorer.ui.dialogs.sparse_autoencoder import SparseAutoencoderDialog
from explorer.ui.panels.effect import EffectPanel
from explorer.ui.panels.generation import GenerationPanel
from explorer.ui.panels.navigator import Navigator
from explorer.ui.panels.prompt import PromptPanel
from explorer.ui.panels.tour import TourDock
from explorer.ui.panels.weights_menus import WeightsBanner, WeightsMenus
from explorer.ui.settings import read_text
from explorer.ui.tabs.backward import GradientsView
from explorer.ui.tabs.features import FeaturesView
from explorer.ui.tabs.input_attribution import AttributionView
from explorer.ui.tabs.patching import PatchingView
from explorer.ui.tabs.sublayer_lens import SublayerLensView
from explorer.ui.views import make_views
from explorer.ui.views.base import StagePanel
from explorer.ui.widgets.layout import scrolled, size_by_current_page
from explorer.ui.widgets.message_bar import MessageBar
from gpt_core import GPTCoreError, available_devices

# The folders remembered for the next time: Export's and Save trace's apart.
_EXPORT_FOLDER, _TRACE_FOLDER = "export/folder", "trace/folder"
FULL_SIZE = QSize(1600, 1000)  # the first window's size where the screen has the room
SIDE_DOCK_PX = 300  # the side docks' narrowest start
NARROW_SCREEN_PX = 1500
WIDE_DOCK_PX = 420  # the architecture tree's three columns in full
CENTRE_PX = 900  # room for a stage view's panes side by side


def initial_size(available: QSize) -> QSize:
    """FULL_SIZE, or what of it fits the screen's free area (less a margin for the frame)."""
    return FULL_SIZE.boundedTo(QSize(available.width() - 16, available.height() - 40))


class MainWindow(QMainWindow):
    def __init__(self, session: Session, settings, parent=None):
        super().__init__(parent)
        self.session = session
        self.settings = settings
        self.setWindowTitle("GPT Explorer")
        self.actions_by_name: dict[str, QAction] = {}
        self._build_actions()

        self.message_bar = MessageBar()
        self.weights_banner = WeightsBanner(session)
        self.prompt = PromptPanel(session, self.actions_by_name["run"])
        self._build_tabs()
        self.prompt.leaveRequested.connect(lambda: self.tabs.currentWidget().setFocus())
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.weights_banner)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.prompt)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.navigator = Navigator(session)
        self.generation = GenerationPanel(
            session, self.actions_by_name["generate"], self.actions_by_name["undo_generate"]
        )
        self.effect = EffectPanel(session)
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self._dock("navigator", "Architecture", self.navigator, left)
        effect_dock = self._dock("effect", "Switches && effect", self.effect, right)
        generation_dock = self._dock("generation", "Generate", self.generation, right)
        self.splitDockWidget(effect_dock, generation_dock, Qt.Orientation.Vertical)
        self.effect.setMinimumWidth(250)
        self.tour_dock = TourDock(session, self.actions_by_name, settings, beside=effect_dock)
        self._build_toolbar()
        self._build_status_bar()

        session.message.connect(self.show_message)
        session.promptTooLong.connect(self._prompt_too_long)
        session.busyChanged.connect(self._busy)
        session.progress.connect(self._progress)
        session.modelChanged.connect(self._model_changed)
        session.sectionChanged.connect(self._section_changed)
        self._model_changed()

    # ------------------------------------------------------------------ building
    def _build_tabs(self) -> None:
        """The centre: the stage views and, beside them, the tabs that need their room."""
        session = self.session
        self.stage_panel = StagePanel(session, make_views(session))
        for view in self.stage_panel.views:
            view.exportRequested.connect(self.open_export_dialog)
        self.gradients = GradientsView(session)
        self.patching = PatchingView(session)
        self.sublayer_lens = SublayerLensView(session)
        self.attribution = AttributionView(session)
        self.features = FeaturesView(session, self.actions_by_name["sparse_autoencoder"])
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for page, title in (
            (self.stage_panel, "Stage"),
            (self.gradients, "Backward step"),
            (self.patching, "Patching"),
            (self.sublayer_lens, "Sub-layer lens"),
            (self.attribution, "Attribution"),
            (self.features, "Features"),
        ):
            self.tabs.addTab(page, title)
            # A click anywhere in a view takes the keys from the prompt box (→ / ← step again).
            page.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        for page in (self.patching, self.sublayer_lens):
            page.openInStage.connect(lambda: self.tabs.setCurrentWidget(self.stage_panel))
        size_by_current_page(self.tabs)  # a hidden tab's minimum size must not widen the window

    def _build_actions(self) -> None:
        menus = {}
        for spec in ACTIONS:
            action = QAction(spec.text, self)
            if spec.shortcut:
                keys = (spec.shortcut, *spec.more_shortcuts)
                action.setShortcuts([QKeySequence(key) for key in keys])
            if spec.tip:
                action.setToolTip(spec.tip)
                action.setStatusTip(spec.tip)
            action.triggered.connect(self._runner_of(spec))
            if spec.menu not in menus:
                menus[spec.menu] = self.menuBar().addMenu(f"&{spec.menu}")
            menus[spec.menu].addAction(action)
            self.addAction(action)  # shortcuts work wherever the focus is
            self.actions_by_name[spec.name] = action
        self._view_menu = menus["View"]
        self.weights_menus = WeightsMenus(
            self.session, self.settings, menus["File"], menus["Model"], self
        )
        mode_menu = menus["Model"].addMenu("Ablation &mode")
        for mode, text in (
            ("zero", "Zero: switched-off heads output 0"),
            ("mean", "Mean: switched-off heads output their mean over positions"),
        ):
            action = QAction(text, self, checkable=True)
            action.setChecked(mode == "zero")
            action.triggered.connect(lambda checked, m=mode: self.session.set_ablation_mode(m))
            mode_menu.addAction(action)
            self.actions_by_name[f"mode_{mode}"] = action
        self.session.interventionsChanged.connect(self._sync_mode_menu)

    def _runner_of(self, spec):
        """What an action runs: a Session method straight, or the window's on_<name>."""
        if spec.calls:
            method, *args = spec.calls
            return lambda: getattr(self.session, method)(*args)
        return getattr(self, f"on_{spec.name}")

    def _dock(self, name: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(scrolled(widget))  # narrower than its content on a small screen
        self.addDockWidget(area, dock)
        self._view_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main")
        bar.setObjectName("toolbar_main")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(bar)
        for spec in ACTIONS:
            if spec.toolbar:
                if spec.name == "previous":
                    bar.addSeparator()
                bar.addAction(self.actions_by_name[spec.name])
        # Block and device in a toolbar of their own: on a narrow screen it takes a second
        # row instead of falling into the first one's overflow menu.
        bar = self.block_toolbar = QToolBar("Block and device")
        bar.setObjectName("toolbar_block")
        self.addToolBar(bar)
        bar.addWidget(QLabel(" Block "))
        self.layer_slider = QSlider(Qt.Orientation.Horizontal)
        self.layer_slider.setFixedWidth(160)
        self.layer_slider.setToolTip("Jump between blocks (PgUp / PgDn)")
        self.layer_slider.valueChanged.connect(self.session.select_layer)
        bar.addWidget(self.layer_slider)
        self.layer_label = QLabel()
        bar.addWidget(self.layer_label)
        bar.addSeparator()
        bar.addWidget(QLabel(" Device "))
        self.device_combo = QComboBox()
        for device in available_devices():
            self.device_combo.addItem(device.upper() if device == "cpu" else "CUDA", device)
        self.device_combo.activated.connect(
            lambda index: self.session.set_device(self.device_combo.itemData(index))
        )
        bar.addWidget(self.device_combo)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.status_text = QLabel()
        self._last_status = ""
        self.device_text = QLabel()
        self.busy = QProgressBar()
        self.busy.setFixedWidth(160)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        self.cancel_button.hide()
        status.addWidget(self.status_text, 1)
        status.addPermanentWidget(self.busy)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(self.device_text)

    # ------------------------------------------------------------------ session -> window
    def show_message(self, level: str, text: str) -> None:
        if level == "status":
            self._last_status = text
            self.status_text.setText(text)
            self.message_bar.clear()
        else:
            self.message_bar.show_message(level, text)

    def _prompt_too_long(self, n_tokens: int, limit: int) -> None:
        self.message_bar.show_message(
            "warning",
            f"The prompt has {n_tokens:,} tokens; this model sees at most {limit:,}. "
            "Shorten it, or run on its last tokens. Your text is kept as it is.",
            f"Run on the last {limit:,} tokens",
            lambda: self.session.run(crop=True),
        )

    def _cancellable(self) -> list[str]:
        return [k for k in self.session.runner.kinds() if JOB_KINDS[k].cancellable]

    def _cancel(self) -> None:
        for kind in self._cancellable():
            self.session.cancel(kind)

    def _busy(self, busy: bool, kind: str, label: str) -> None:
        self.busy.setVisible(busy)
        self.busy.setRange(0, 0)  # indeterminate until a job reports progress
        self.cancel_button.setVisible(bool(self._cancellable()))
        # While busy the status bar says what runs; after, the last result again.
        self.status_text.setText(label if busy else self._last_status)

    def _progress(self, fraction, message: str) -> None:
        if fraction is None:
            self.busy.setRange(0, 0)
        else:
            self.busy.setRange(0, 1000)
            self.busy.setValue(int(1000 * fraction))
        self.status_text.setText(message)

    def _model_changed(self) -> None:
        session, model = self.session, self.session.state.model
        self.device_text.setText(f"Device: {session.device_label()}")
        index = self.device_combo.findData(session.device.type)
        if index >= 0:
            self.device_combo.setCurrentIndex(index)
        if session.config is not None:
            self.layer_slider.blockSignals(True)
            self.layer_slider.setRange(0, session.config.n_layers - 1)
            self.layer_slider.blockSignals(False)
            self.setWindowTitle(f"GPT Explorer — {model.label}")
        self._section_changed()

    def _section_changed(self) -> None:
        if self.session.config is None:
            return
        layer = self.session.selection.layer
        self.layer_slider.blockSignals(True)
        self.layer_slider.setValue(layer)
        self.layer_slider.blockSignals(False)
        self.layer_label.setText(f" {layer} / {self.session.config.n_layers - 1} ")

    def _sync_mode_menu(self) -> None:
        mode = self.session.interventions.mode
        for name in ("zero", "mean"):
            self.actions_by_name[f"mode_{name}"].setChecked(mode == name)

    # ------------------------------------------------------------------ actions
    def on_run(self) -> None:
        self.message_bar.clear()
        self.session.set_prompt(self.prompt.text())
        self.session.run()

    def on_backward(self) -> None:
        self.tabs.setCurrentWidget(self.gradients)
        self.gradients.run_backward()

    def on_quit(self) -> None:
        self.close()

    def on_random_weights(self) -> None:
        self.session.load_weights(None)

    def on_load_weights(self) -> None:
        self.weights_menus.pick_file(self)

    def on_sparse_autoencoder(self) -> None:
        SparseAutoencoderDialog(self.session, self.settings, self).open()

    def on_export(self) -> None:
        self.open_export_dialog("head")

    def open_export_dialog(self, what: str) -> None:
        if self.session.trace is None:
            self.show_message("info", "Run a prompt first: there is nothing to export yet.")
            return
        dialog = ExportDialog(self.session, self.export_folder(), self.export, self, what)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def on_save_trace(self) -> None:
        if self.session.trace is None:
            self.show_message("info", "Run a prompt first: there is no trace to save.")
            return
        start = Path(self.export_folder(_TRACE_FOLDER)) / "trace.npz"
        path, _ = QFileDialog.getSaveFileName(self, "Save trace", str(start), "Trace (*.npz)")
        if path:
            request = ExportRequest("trace", Path(path).parent, (), Path(path).name)
            self.export(request, _TRACE_FOLDER)

    # ------------------------------------------------------------------ exporting
    def export_folder(self, key: str = _EXPORT_FOLDER) -> str:
        """The folder last written to by Export (or, with _TRACE_FOLDER, by Save trace)."""
        return read_text(self.settings, key, str(Path.home()))

    def export(self, request: ExportRequest, folder_key: str = _EXPORT_FOLDER) -> list[Path]:
        """Write what the request asks; a failure is a message. The folder is kept by key."""
        try:
            written = export_shown(self.session, request)
        except (GPTCoreError, OSError) as exc:
            self.show_message("error", f"Export failed: {failure_text(exc)}")
            return []
        self.settings.setValue(folder_key, str(request.folder))
        names = ", ".join(p.name for p in written)
        self.show_message("status", f"Exported {names} to {request.folder}")
        return written

    # ------------------------------------------------------------------ settings
    def restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:  # the first start: a size that fits the screen, kept after the model loads
            self.fit_screen(self.screen().availableGeometry().size())
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def fit_screen(self, available: QSize) -> None:
        """Size the window for a screen with `available` free room: on a narrow one the
        block toolbar takes a second row and the side docks start narrow."""
        self.resize(initial_size(available))
        narrow = available.width() < NARROW_SCREEN_PX
        if narrow and not self.toolBarBreak(self.block_toolbar):
            self.insertToolBarBreak(self.block_toolbar)
        docks = [self.findChild(QDockWidget, f"dock_{n}") for n in ("navigator", "effect")]
        # what the centre does not need of its CENTRE_PX, up to the docks' full width
        width = min(max((available.width() - CENTRE_PX) // 2, SIDE_DOCK_PX), WIDE_DOCK_PX)
        self.resizeDocks(docks, [width] * 2, Qt.Orientation.Horizontal)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("prompt/text", self.prompt.text())
        self.settings.setValue("model/device", self.session.device.type)
        self.settings.setValue("model/ablation_mode", self.session.interventions.mode)
        self.settings.sync()
        self.session.shut_down()
        super().closeEvent(event)
