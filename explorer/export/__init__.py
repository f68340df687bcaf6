"""Rendering and writing files (PNG, SVG, CSV, NPY, JSON): shared by the window's export and
the headless commands. Qt's painting classes only, never a widget or pyqtgraph."""
