"""GPT Explorer's app over gpt_core, laid out by role; the folder says what may import Qt:

- state/     the app state and its pure transitions (no Qt)
- session/   the Qt session, its worker, and jobs/ (one module per kind of model work)
- commands/  the headless command line (no widgets), one module per subcommand
- export/    rendering and writing files (Qt painting, no widgets)
- ui/        the window: views/, tabs/, panels/, dialogs/, widgets/

State flows one way: the session runs the model off the GUI thread and emits signals; the
ui reads the session's state and calls its setters.
"""
