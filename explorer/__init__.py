"""GPT Explorer's Qt side: a thin window over a Session that owns the model and its traces.

State flows one way: the Session runs the model (off the GUI thread) and emits signals;
panels and views read the Session and draw; widgets only call the Session's setters.
"""
