"""Guards against a Qt binding that corrupts reference counts (PySide6 6.12.0 drops a
reference to True on every Signal.emit(), and the app aborts after a few thousand).

From Python 3.12 True and None are immortal: their counts never move, so they are checked
only before 3.12; the counts of fresh objects passed through emit() and returned by slots
are checked on every Python."""

import sys

import pytest
from PySide6.QtCore import QObject, Signal

EMITS = 200


class _Emitter(QObject):
    changed = Signal()
    carried = Signal(int, object, str)


class _Payload:
    """A fresh object of our own: never immortal, its count moves on every Python."""


def test_emitting_signals_keeps_the_reference_counts_of_what_they_carry(qtbot):
    emitter, payload, returned = _Emitter(), _Payload(), _Payload()
    seen = []
    emitter.changed.connect(lambda: returned)  # a slot's return value is dropped by Qt
    emitter.carried.connect(lambda i, o, s: seen.append(o is payload))
    payload_before, returned_before = sys.getrefcount(payload), sys.getrefcount(returned)
    for _ in range(EMITS):
        emitter.changed.emit()
        emitter.carried.emit(1, payload, "x")
    assert seen == [True] * EMITS  # the slot ran every time, with the object itself
    assert sys.getrefcount(payload) == payload_before
    assert sys.getrefcount(returned) == returned_before


@pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="True and None are immortal: their counts never move"
)
def test_emitting_signals_keeps_the_reference_counts_of_true_and_none(qtbot):
    emitter = _Emitter()
    emitter.changed.connect(lambda: None)
    emitter.carried.connect(lambda i, o, s: None)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(EMITS):
        emitter.changed.emit()
        emitter.carried.emit(1, None, "x")
    assert abs(sys.getrefcount(True) - true_before) < EMITS // 4
    assert abs(sys.getrefcount(None) - none_before) < EMITS // 4
