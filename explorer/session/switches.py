"""The Session's switches (a part of the Session class kept in its own module): heads and
blocks off, the ablation mode, and Switch all on, each followed by a run of the prompt on
screen under the new switches."""

from __future__ import annotations

from explorer.state import app_state as st
from gpt_core import Interventions
from gpt_core.sae import FeatureSwitches


class SwitchesMixin:
    """Session methods for the switches; they use the Session's state, update(), features
    and _start_run()."""

    def set_interventions(self, interventions: Interventions) -> None:
        if interventions == self.state.interventions:
            return
        interventions.check(self.config)
        self.update(st.with_interventions, interventions)
        self.rerun()

    def rerun(self) -> None:
        """Run the prompt on screen again, under the switches now in force."""
        result = self.state.result
        if result is not None:
            self._start_run(list(result.key.token_ids), self.state.ran_text or "")

    def toggle_head(self, layer: int, head: int) -> None:
        self.set_interventions(self.state.interventions.toggle_head(layer, head))

    def toggle_layer(self, layer: int) -> None:
        self.set_interventions(self.state.interventions.toggle_layer(layer))

    def set_ablation_mode(self, mode: str) -> None:
        self.set_interventions(self.state.interventions.with_mode(mode))

    def restore_all(self) -> None:
        """Every head and block on, every feature switch off."""
        if self.state.features.switches.is_empty:
            self.set_interventions(Interventions(mode=self.state.interventions.mode))
            return
        self.update(st.with_interventions, Interventions(mode=self.state.interventions.mode))
        self.features.set_switches(FeatureSwitches())
