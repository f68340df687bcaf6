"""The Qt session over the app state: it owns the torch model, runs model work off the GUI
thread (worker.py) and announces each part of the state that changed with its own signal.
Qt core only (signals, threads), never a widget. One module per kind of model work in jobs/."""
