"""The stage views on small screens, many heads and long prompts: nothing is squeezed into a
strip or cut off at the right edge, the head check boxes wrap, the single head zooms and
pans with a choice of colour scale, and both axes keep labels however many tokens."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QSize, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea

from gpt_core import GPTConfig
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The cat sat on the mat. Ünïcödé!"  # 15 tokens
SIXTEEN_HEADS = GPTConfig(context_length=1024, emb_dim=64, n_heads=16, n_layers=2, qkv_bias=True)
TWELVE_HEADS = SIXTEEN_HEADS.replace(n_heads=12, emb_dim=48)
HEAD_MIN_PX = 250  # the single head: smaller and 13 tokens are a blur
PLOT_MIN_PX = 120


def _settle(qtbot, window) -> None:
    QApplication.processEvents()
    qtbot.wait(50)
    QApplication.processEvents()


@pytest.fixture
def open_window(open_sized_window):
    """open_window(config, width, height): the window on a screen of that size, with every
    dock open, `config`'s random model loaded and PROMPT run."""
    return lambda config, width, height: open_sized_window(config, width, height, PROMPT)


def _show(qtbot, window, name, layer=None):
    session = window.session
    index = next(i for i, s in enumerate(session.sections) if (s.name, s.layer) == (name, layer))
    session.select_section(index)
    _settle(qtbot, window)
    return window.stage_panel.view_for(session.section.spec.view)


def _right_edge_inside(graphics_view, item) -> bool:
    """`item` (in a pyqtgraph widget's scene) ends within the widget's width."""
    return item.sceneBoundingRect().right() <= graphics_view.viewport().width() + 1


# ---------------------------------------------------------------- the window at 1280 x 800
def test_window_fits_a_small_screen_with_every_dock_open(open_window):
    size = (1280, 800)
    window = open_window(TWELVE_HEADS, *size)
    assert window.width() <= size[0] and window.height() <= size[1]
    for dock_name in ("navigator", "effect", "generation"):
        assert getattr(window, dock_name).isVisible()
    combo = window.device_combo  # not hidden in the toolbar's overflow menu
    assert combo.isVisible() and combo.mapTo(window, QPoint(combo.width(), 0)).x() <= size[0]


@pytest.mark.parametrize("config", [TWELVE_HEADS, SIXTEEN_HEADS], ids=["12 heads", "16 heads"])
@pytest.mark.parametrize("size", [(1280, 800), (1366, 768)])
def test_attention_view_keeps_the_head_and_the_grid_readable(open_window, qtbot, config, size):
    window = open_window(config, *size)
    view = _show(qtbot, window, "attention", 0)
    assert view.heatmap.height() >= HEAD_MIN_PX and view.heatmap.width() >= HEAD_MIN_PX
    thumbnails = [box.sceneBoundingRect() for box in view.grid.boxes]
    assert len(thumbnails) == config.n_heads
    assert min(min(r.width(), r.height()) for r in thumbnails) >= 40
    assert all(_right_edge_inside(view.grid, box) for box in view.grid.boxes)
    # the check boxes wrap: none reaches past the view's right edge
    for box in view.head_boxes:
        assert box.isVisible()
        assert box.mapTo(view, QPoint(box.width(), 0)).x() <= view.width()


def test_sixteen_heads_leave_the_head_its_room_on_a_large_screen(open_window, qtbot):
    window = open_window(SIXTEEN_HEADS, 1600, 1000)
    view = _show(qtbot, window, "attention", 0)
    assert view.heatmap.width() >= 400 and view.heatmap.height() >= 400
    rows = {box.mapTo(view, QPoint(0, 0)).y() for box in view.head_boxes}
    assert all(
        box.mapTo(view, QPoint(box.width(), 0)).x() <= view.width() for box in view.head_boxes
    )
    assert len(rows) <= 2


def test_layernorm_plots_keep_their_height(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1280, 800)
    view = _show(qtbot, window, "ln1", 0)
    for plot in (view.mean_plot, view.var_plot, view.heatmap):
        assert plot.height() >= PLOT_MIN_PX
        assert _right_edge_inside(
            plot, plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot.plot
        )


def test_residual_heatmap_shows_every_dimension_and_its_colour_bar(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1280, 800)
    view = _show(qtbot, window, "resid_mid", 0)
    heatmap = view.heatmap
    (x_low, x_high), _ = heatmap.plot.getViewBox().viewRange()
    assert (x_low, x_high) == (0, TWELVE_HEADS.emb_dim)
    assert _right_edge_inside(heatmap, heatmap.plot.getViewBox())
    assert _right_edge_inside(heatmap, heatmap.colorbar)
    along = view.along.getPlotItem()  # its legend sits in the title
    assert _right_edge_inside(view.along, along)


def test_lens_cells_show_the_token_not_just_the_probability(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1280, 800)
    view = _show(qtbot, window, "output")
    qtbot.waitUntil(lambda: view.lens_shown is not None, timeout=GUI_TIMEOUT_MS)
    header = view.lens_table.horizontalHeader()
    assert min(header.sectionSize(c) for c in range(header.count())) >= 100


def test_first_window_fits_the_screen_and_keeps_its_size_after_the_model_loads(qtbot):
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    args = gui_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--seed", "1"])
    window, session = build_window(args, open_settings())
    qtbot.addWidget(window)
    available = window.screen().availableGeometry().size()
    window.show()
    first = window.size()
    assert first.width() <= available.width() and first.height() <= available.height()
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    wait_for_run(qtbot, session, PROMPT)
    _settle(qtbot, window)
    assert window.size() == first
    window.close()


def test_first_size_is_the_full_size_where_the_screen_has_room():
    from explorer.ui.main_window import initial_size

    assert initial_size(QSize(2560, 1440)) == QSize(1600, 1000)
    small = initial_size(QSize(1280, 800))
    assert small.width() <= 1280 and small.height() <= 800 and small.width() >= 1200


# ---------------------------------------------------------------- heatmap widget
def _heatmap(qtbot, width, height):
    from explorer.ui.widgets.heatmap import Heatmap

    heatmap = Heatmap()
    qtbot.addWidget(heatmap)
    heatmap.resize(width, height)
    heatmap.show()
    qtbot.waitExposed(heatmap)
    return heatmap


def _ticks(heatmap, axis: str) -> list[tuple[float, str]]:
    return heatmap.plot.getAxis(axis)._tickLevels[0]


def _attention(T: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    scores = np.where(np.tril(np.ones((T, T))) > 0, rng.normal(size=(T, T)), -np.inf)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)  # [T, T]


def test_both_axes_keep_labels_on_a_short_prompt_in_a_small_heatmap(qtbot):
    heatmap = _heatmap(qtbot, 220, 220)
    labels = [f"{i}:␣token{i}" for i in range(13)]
    heatmap.set_matrix(_attention(13), labels, labels, signed=False)
    _settle(qtbot, heatmap)
    for axis in ("left", "bottom"):
        ticks = _ticks(heatmap, axis)
        assert len(ticks) >= 2
        assert all(labels[int(pos - 0.5)] == text for pos, text in ticks)


def test_a_long_prompt_thins_the_labels_to_those_in_view(qtbot):
    heatmap = _heatmap(qtbot, 500, 500)
    labels = [f"{i}:␣t" for i in range(900)]
    heatmap.set_matrix(_attention(900), labels, labels, signed=False)
    _settle(qtbot, heatmap)
    for axis in ("left", "bottom"):
        assert 2 <= len(_ticks(heatmap, axis)) < 60
    heatmap.enable_zoom()
    heatmap.plot.setRange(xRange=(800, 840), yRange=(800, 840), padding=0)
    _settle(qtbot, heatmap)
    for axis in ("left", "bottom"):
        ticks = _ticks(heatmap, axis)
        assert len(ticks) >= 2 and all(800 <= pos <= 840 for pos, _ in ticks)


def test_colour_scales_on_a_known_matrix():
    from explorer.ui.widgets.colour_scale import LOG_DECADES, scaled

    matrix = np.array([[1.0, 0.0], [0.25, 0.75]], dtype=np.float32)
    image, levels = scaled(matrix, matrix, "fixed")
    assert levels == (0.0, 1.0) and image is matrix
    visible = matrix[1:, :]  # zoomed on the second row
    assert scaled(matrix, visible, "auto")[1] == (0.0, 0.75)
    image, levels = scaled(matrix, visible, "log")
    floor = 0.75 * 10.0**-LOG_DECADES
    np.testing.assert_allclose(levels, (np.log10(floor), np.log10(0.75)), rtol=1e-12)
    np.testing.assert_allclose(image, np.log10(np.maximum(matrix, floor)), rtol=1e-6)
    with_nan = matrix.copy()
    with_nan[0, 1] = np.nan
    assert np.isnan(scaled(with_nan, with_nan, "log")[0][0, 1])  # left for the overlay
    assert scaled(with_nan, with_nan, "auto")[1] == (0.0, 1.0)


def test_zoom_pan_and_auto_colours_follow_the_visible_cells(qtbot):
    heatmap = _heatmap(qtbot, 400, 400)
    weights = _attention(100)
    heatmap.set_matrix(weights, signed=False)
    heatmap.enable_zoom()
    heatmap.set_colour_scale("auto")
    assert heatmap.colorbar.levels() == (0.0, pytest.approx(float(weights.max())))
    box = heatmap.plot.getViewBox()
    center = box.mapViewToScene(QPointF(80, 80))
    position = QPointF(heatmap.mapFromScene(center))
    wheel = QWheelEvent(
        position,
        QPointF(heatmap.viewport().mapToGlobal(position.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * 5),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(heatmap.viewport(), wheel)
    _settle(qtbot, heatmap)
    (x0, x1), (y0, y1) = box.viewRange()
    assert x1 - x0 < 90 and y1 - y0 < 90  # the wheel zoomed in
    rows, cols = heatmap.visible_cells()
    shown_max = float(weights[rows, cols].max())
    assert shown_max < float(weights.max())
    assert heatmap.colorbar.levels() == (0.0, pytest.approx(shown_max))
    heatmap.set_colour_scale("log")
    low, high = heatmap.colorbar.levels()
    assert high == pytest.approx(np.log10(shown_max)) and low == pytest.approx(high - 4)
    heatmap.reset_zoom()
    assert box.viewRange() == [[0, 100], [0, 100]]
    heatmap.box_zoom(True)
    assert box.state["mouseMode"] == box.RectMode


def test_attention_view_colour_choice_reaches_the_head_and_the_grid(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1600, 1000)
    view = _show(qtbot, window, "attention", 0)
    view.zoom.scale.setCurrentIndex(view.zoom.scale.findData("log"))
    weights = window.session.trace[window.session.section.key("weights")]  # [H, T, T]
    low, high = view.grid.colorbar.levels()
    assert high == pytest.approx(np.log10(weights.max()), abs=1e-6) and low == pytest.approx(
        high - 4
    )
    assert "log₁₀" in view.heatmap.title_label.text
    view.zoom.reset.click()
    (x0, x1), (y0, y1) = view.heatmap.plot.getViewBox().viewRange()  # square cells: a margin
    assert x0 <= 0 and x1 >= weights.shape[-1] and y0 <= 0 and y1 >= weights.shape[-1]
    assert min(x1 - x0, y1 - y0) == pytest.approx(weights.shape[-1])


def test_a_long_prompt_opens_on_log_colours_until_the_person_picks(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1600, 1000)
    session = window.session
    view = _show(qtbot, window, "attention", 0)
    assert view.zoom.chosen == "auto"  # 15 tokens
    wait_for_run(qtbot, session, "the cat sat on a mat " * 40)  # 240 tokens: weights ≈ 1/T
    _settle(qtbot, window)
    assert view.zoom.chosen == "log" and "log₁₀" in view.heatmap.title_label.text
    wait_for_run(qtbot, session, PROMPT)
    assert view.zoom.chosen == "auto"
    fixed = view.zoom.scale.findData("fixed")
    view.zoom.scale.setCurrentIndex(fixed)
    view.zoom.scale.activated.emit(fixed)  # as a pick in the list reports it
    wait_for_run(qtbot, session, "the cat sat on a mat " * 40)
    assert view.zoom.chosen == "fixed"


def test_a_long_title_wraps_instead_of_pushing_the_plot_out_of_view(qtbot):
    from explorer.ui.widgets.plots import LabelledPlot

    plot = LabelledPlot("A title much longer than the plot is wide, " * 3, "token", "value")
    for key in ("a", "b", "c"):
        plot.add_curve(key, f"curve {key} with a long name", "#1c7ed6")
    qtbot.addWidget(plot)
    plot.resize(300, 240)
    plot.show()
    qtbot.waitExposed(plot)
    plot.set_places([str(i) for i in range(10)])
    _settle(qtbot, plot)
    assert _right_edge_inside(plot, plot.getPlotItem())


def _show_backward(qtbot, window) -> None:
    session = window.session
    with qtbot.waitSignal(session.gradientsChanged, timeout=GUI_TIMEOUT_MS):
        session.run_backward()
    window.tabs.setCurrentWidget(window.gradients)
    _settle(qtbot, window)


def _show_attribution(qtbot, window, position: int) -> None:
    session = window.session
    session.select_position(position)
    window.tabs.setCurrentWidget(window.attribution)
    with qtbot.waitSignal(session.attributionChanged, timeout=GUI_TIMEOUT_MS):
        window.attribution.run_button.click()
    wait_idle(qtbot, session)
    _settle(qtbot, window)


def test_the_tabs_keep_their_controls_in_sight_at_1280_by_800(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1280, 800)
    # Backward step: the replay speed is a slider one can drag, its label wraps in view
    _show_backward(qtbot, window)
    view = window.gradients
    assert view.speed.width() >= 80
    reached = view.reached
    assert reached.text() and reached.mapTo(view, QPoint(reached.width(), 0)).x() <= view.width()
    # Patching: the whole set-up, Run included, shows without scrolling (the maps below it
    # are scrolled to)
    window.tabs.setCurrentWidget(window.patching)
    _settle(qtbot, window)
    run = window.patching.setup.run_button
    area = window.patching.findChild(QScrollArea)  # the tab's page
    bottom = run.mapTo(area.viewport(), QPoint(0, run.height())).y()
    assert run.isVisible() and bottom <= area.viewport().height()
    # Attribution: every column of the ranked table, the rank last, within its width
    _show_attribution(qtbot, window, 3)
    table = window.attribution.table
    header = table.horizontalHeader()
    rank = header.sectionViewportPosition(3) + header.sectionSize(3)
    assert rank <= table.viewport().width() and header.sectionSize(3) >= 30


def test_a_long_prompt_scrolls_the_token_strips_instead_of_growing_the_window(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1280, 800)
    session = window.session
    wait_for_run(qtbot, session, "the cat sat on a mat " * 100)  # 600 tokens
    _show_backward(qtbot, window)
    assert window.height() <= 800
    stage = window.gradients.stage_view
    assert stage.height() >= PLOT_MIN_PX  # the gradient heatmap, not a strip under chips
    _show_attribution(qtbot, window, 5)
    assert window.height() <= 800
    assert window.attribution.methods.height() >= PLOT_MIN_PX
    for strip in (window.attribution.strip, window.gradients.saliency, window.prompt.strip):
        assert strip.parentWidget().parentWidget().height() <= 110  # its scroll area


def test_the_explanation_folds_away_on_a_laptop_screen_until_opened(open_window, qtbot):
    window = open_window(TWELVE_HEADS, 1280, 800)
    panel = window.stage_panel
    assert panel.height() < 600 and not panel.explanation.isVisible()
    qtbot.mouseClick(panel.explain, Qt.MouseButton.LeftButton)  # the person opens it
    assert panel.explanation.isVisible() and panel.explanation.text()
    window.resize(1270, 790)
    _settle(qtbot, window)
    assert panel.explanation.isVisible()  # kept as they left it
    wide = open_window(TWELVE_HEADS, 1920, 1080)
    assert wide.stage_panel.height() >= 600 and wide.stage_panel.explanation.isVisible()
