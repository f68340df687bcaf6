"""The Session's guided tour (a part of the Session class kept in its own module): each step
is a pure transition of tour.py, so the section, head and pair it opens are state like any
other selection, and the views follow them as they follow a click."""

from __future__ import annotations

from explorer.state import tour


class TourMixin:
    """Session methods for the tour; they use the Session's state, update() and run()."""

    def open_tour(self) -> None:
        """Show the tour where it was left; before any run, run the prompt for it."""
        self.update(tour.open_tour)
        if self.state.result is None and self.state.prompt_text.strip():
            self.run()

    def close_tour(self) -> None:
        self.update(tour.close_tour)

    def move_tour(self, delta: int) -> None:
        """The next (delta = 1) or previous (-1) step."""
        self.update(tour.move_step, delta)

    def go_to_tour_step(self, step: int) -> None:
        self.update(tour.go_to_step, step)

    def resume_tour_at(self, step: int) -> None:
        """The step the next opening starts at (remembered from an earlier session)."""
        self.update(tour.resume_at, step)
