"""Shared widgets (heatmap, head grid, plots, token strip, ...); views and tabs stay thin."""
