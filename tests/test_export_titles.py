"""Exported figures keep their titles inside the image: a title wider than the figure wraps
(elided on its last line), no title pixel reaches the right edge, and the file's metadata
holds the whole text (PNG text chunks Title and Description; SVG <title> and <desc>)."""

import xml.etree.ElementTree as ET

import numpy as np
from PySide6.QtGui import QFont, QFontMetrics, QImage

from explorer.export.attention import export_head
from explorer.export.render import TITLE_LINES, HeatmapFigure, save_figure
from gpt_core import capture, get_tokenizer

LONG = "A very long title " + " ".join(f"word{i}" for i in range(200)) + " unbroken" + "x" * 300
SVG = "{http://www.w3.org/2000/svg}"


def _figure(title: str = LONG) -> HeatmapFigure:
    labels = ("a", "b", "c")
    return HeatmapFigure(np.arange(9.0).reshape(3, 3), labels, labels, title)


def _ink(image: QImage) -> np.ndarray:
    """[height, width] True where anything but white is drawn."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    width, height = image.width(), image.height()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(height, image.bytesPerLine())
    return (pixels[:, : 4 * width].reshape(height, width, 4)[..., :3] < 200).any(axis=2)


def _title_font() -> QFont:
    """The exports' title font: DejaVu Sans, 11 pt, bold."""
    font = QFont("DejaVu Sans")
    font.setPointSize(11)
    font.setBold(True)
    return font


def _title_line_px() -> int:
    return QFontMetrics(_title_font()).height()


def test_a_long_png_title_wraps_inside_the_image_and_is_whole_in_its_metadata(tmp_path):
    short = QImage(str(save_figure(tmp_path / "short.png", [_figure("L0 H1")])))
    image = QImage(str(save_figure(tmp_path / "long.png", [_figure()])))
    assert image.width() == short.width() < 400  # a small figure: the title is far wider
    # the title takes its lines above the heatmap, which moves down by as much
    extra = image.height() - short.height()
    assert extra == (TITLE_LINES - 1) * _title_line_px()
    top = _ink(image)[: extra + _title_line_px()]  # the title's rows
    assert top.any() and not top[:, -4:].any()  # nothing drawn at the right edge
    assert image.text("Title") == LONG and image.text("Description") == LONG


def test_a_long_svg_title_wraps_and_its_title_and_desc_hold_the_whole_text(tmp_path):
    path = save_figure(tmp_path / "long.svg", [_figure()], description="all of it: " + LONG)
    root = ET.parse(path).getroot()
    assert root.find(f"{SVG}title").text == LONG
    assert root.find(f"{SVG}desc").text == "all of it: " + LONG
    drawn = [t.text for t in root.iter(f"{SVG}text") if (t.text or "").startswith(("A v", "wo"))]
    assert len(drawn) == TITLE_LINES  # wrapped onto lines, not one line running off
    assert drawn[-1].rstrip().endswith("…")
    view_width = float(root.get("viewBox").split()[2])
    metrics = QFontMetrics(_title_font())
    assert all(metrics.horizontalAdvance(line) <= view_width - 16 for line in drawn)


def test_a_short_title_stays_on_one_line(tmp_path):
    path = save_figure(tmp_path / "short.svg", [_figure("L0 H1")])
    root = ET.parse(path).getroot()
    assert [t.text for t in root.iter(f"{SVG}text") if t.text == "L0 H1"] == ["L0 H1"]


def test_an_attention_export_keeps_the_whole_prompt_in_its_metadata(tiny_model, tmp_path):
    tiny_trace = capture(tiny_model, get_tokenizer().encode("Hello, world. Hello again!"))
    prompt = "a prompt much longer than the sixty characters the figure's title keeps of it"
    (path,) = export_head(tiny_trace, 0, 1, tmp_path, ("png",), prompt)
    image = QImage(str(path))
    assert "…" in image.text("Title")  # the title shortens the prompt …
    assert prompt in image.text("Description")  # … the description keeps it whole
