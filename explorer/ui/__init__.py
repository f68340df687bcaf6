"""The window: main_window.py, actions.py (every command and shortcut), dialogs/, views/
(the stage walk), tabs/ (Backward, Patching, Lens, Attribution), panels/ and widgets/ (shared,
reusable). Widgets read the session's state and call its setters; they never write the state."""
