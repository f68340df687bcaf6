"""Persistent settings (QSettings). GPT_EXPLORER_SETTINGS names an .ini file to use
instead of the platform's store; the tests point it at a temporary file."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

ORGANIZATION = "GPT Explorer"
APPLICATION = "gpt-explorer"


def open_settings() -> QSettings:
    path = os.environ.get("GPT_EXPLORER_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)
