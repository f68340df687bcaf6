"""Guards against a Qt binding that corrupts reference counts (PySide6 6.12.0 drops a
reference to True on every Signal.emit(), and the app aborts after a few thousand)."""

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    changed = Signal()
    carried = Signal(int, object, str)


def test_emitting_signals_keeps_reference_counts(qtbot):
    emitter = _Emitter()
    emitter.changed.connect(lambda: None)
    emitter.carried.connect(lambda i, o, s: None)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        emitter.changed.emit()
        emitter.carried.emit(1, None, "x")
    assert abs(sys.getrefcount(True) - true_before) < 50
    assert abs(sys.getrefcount(None) - none_before) < 50
