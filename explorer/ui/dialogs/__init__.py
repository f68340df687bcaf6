"""Dialogs the window opens: export, a head on the repeated-sequence test."""
