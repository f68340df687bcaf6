"""The weight matrices the Weights dialog draws: read from the model off the GUI thread (the
token embedding, 50,257 × 768, takes ≈ 100 ms on two cores), kept per model while it is
in use (the most recently shown KEEP_MATRICES of them) and dropped when the model changes."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, Signal

from gpt_core.analysis.weight_matrices import WeightMatrix, read_weight_matrix, section_matrices

KEEP_MATRICES = 32  # ≤ 768 × 768 float32 each: at most ≈ 75 MB kept


class WeightMatricesJobs(QObject):
    ready = Signal(str, object)  # section name, layer (None outside blocks): now readable

    def __init__(self, session):
        super().__init__(session)
        self.session = session
        self._kept: OrderedDict[str, WeightMatrix] = OrderedDict()  # parameter name -> matrix
        session.modelChanged.connect(self._kept.clear)

    def matrices(self, section: str, layer: int | None) -> list[WeightMatrix] | None:
        """The weight matrices of section `section` in block `layer` (for the model in use),
        or None while they are read: `ready` says when they can be had."""
        entries = section_matrices(section)
        names = [entry.parameter.format(layer=layer) for entry in entries]
        if all(name in self._kept for name in names):
            for name in names:
                self._kept.move_to_end(name)
            return [self._kept[name] for name in names]
        missing = [e for e, n in zip(entries, names, strict=True) if n not in self._kept]
        self._read(section, layer, missing)
        return None

    def _read(self, section: str, layer: int | None, entries) -> None:
        session = self.session
        model, loaded = session.model, session.state.model
        asked = (loaded, section, layer)
        if model is None or session.runner.in_flight("weight_matrices") == asked:
            return

        def job(ctx) -> list[WeightMatrix]:
            return [read_weight_matrix(model, entry, layer, loaded.config) for entry in entries]

        def done(read: list[WeightMatrix]) -> None:
            if session.state.model is not loaded:
                return  # another model's meanwhile
            for matrix in read:
                self._kept[matrix.parameter] = matrix
            while len(self._kept) > KEEP_MATRICES:
                self._kept.popitem(last=False)
            self.ready.emit(section, layer)

        session.submit("weight_matrices", job, done, tag=asked)
