"""One block's out_proj weight and bias, read off the model for the attention step view:
read on the worker (a backward step's SGD trial may be changing the weights on it), kept
for the model that made them and dropped when the model changed meanwhile."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from gpt_core.analysis import out_proj_arrays


class OutProjJobs(QObject):
    ready = Signal()  # a block's arrays arrived: arrays() now has them

    def __init__(self, session):
        super().__init__(session)
        self.session = session
        # (the LoadedModel they were read from, block) -> (weight [E, E], bias [E]); one block
        # only: gpt2-xl's out_proj is 10 MB a block.
        self._held: tuple[object, int, tuple[np.ndarray, np.ndarray]] | None = None

    def arrays(self, layer: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Block `layer`'s out_proj weight [E, E] ([out, in]) and bias [E] of the current
        model; None while they are being read (`ready` follows)."""
        loaded = self.session.state.model
        if loaded is None:
            return None
        if self._held is not None and self._held[:2] == (loaded, layer):
            return self._held[2]
        if self.session.runner.in_flight("out_proj") != (loaded, layer):
            self._read(loaded, layer)  # (again after a failed read)
        return None

    def _read(self, loaded, layer: int) -> None:
        session, model = self.session, self.session.model

        def job(ctx) -> tuple[np.ndarray, np.ndarray]:
            weight, bias = out_proj_arrays(model, layer)
            # float64 once: attention_pair recomputes attn/out in float64 on every click.
            return weight.astype(np.float64), bias

        def done(arrays: tuple[np.ndarray, np.ndarray]) -> None:
            if session.state.model is not loaded:
                return  # read from a model that is gone
            self._held = (loaded, layer, arrays)
            self.ready.emit()

        session.submit("out_proj", job, done, tag=(loaded, layer))
