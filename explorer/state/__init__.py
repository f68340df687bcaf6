"""The app state as plain, immutable data with pure transitions. No Qt, no torch model:
the session replaces the state through these functions and the widgets only read it."""
