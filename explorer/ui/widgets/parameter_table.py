"""Every parameter's gradient after a backward step: its shape, gradient norm, weight norm
and their ratio, sortable by any column (largest gradient first to start with)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from explorer.ui.widgets.tables import NumberItem
from gpt_core.probe.trace import ParamGrad

_COLUMNS = ["parameter", "shape", "grad norm", "weight norm", "grad / weight"]


class ParameterGradients(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, len(_COLUMNS), parent)
        self.setHorizontalHeaderLabels(_COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # Columns as wide as their contents, scrolled sideways when the tab is narrower;
        # the order is the person's (a click on a heading), largest gradient first at start.
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setSortingEnabled(True)
        self.sortItems(2, Qt.SortOrder.DescendingOrder)

    def show_params(self, params: list[ParamGrad]) -> None:
        self.setSortingEnabled(False)
        self.setRowCount(len(params))
        for row, p in enumerate(params):
            self.setItem(row, 0, QTableWidgetItem(p.name))
            self.setItem(row, 1, QTableWidgetItem("×".join(map(str, p.shape))))
            self.setItem(row, 2, NumberItem(p.grad_norm, f"{p.grad_norm:.4e}"))
            self.setItem(row, 3, NumberItem(p.weight_norm, f"{p.weight_norm:.4f}"))
            self.setItem(row, 4, _ratio_item(p))
        self.setSortingEnabled(True)  # sorts again by the heading the person chose


def _ratio_item(param: ParamGrad) -> NumberItem:
    """grad / weight, or "—" where the weights are all zero (a bias at its start), sorted
    below every ratio."""
    if param.weight_norm == 0:
        return NumberItem(-np.inf, "—")
    return NumberItem(param.ratio, f"{param.ratio:.3e}")
