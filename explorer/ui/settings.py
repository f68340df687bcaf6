"""Persistent settings (QSettings). GPT_EXPLORER_SETTINGS names an .ini file to use
instead of the platform's store; the tests point it at a temporary file. A settings file
can hold anything (edited by hand, written by another version): every read goes through
read_text(), read_texts() or read_choice(), which give the default for a value of the wrong type."""

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


def read_text(settings: QSettings, key: str, default: str = "") -> str:
    value = settings.value(key, default)
    return value if isinstance(value, str) else default


def read_texts(settings: QSettings, key: str) -> list[str]:
    """A list of strings (one string read back from an .ini file is a list of one)."""
    value = settings.value(key, [])
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def read_choice(settings: QSettings, key: str, choices, default: str) -> str:
    value = read_text(settings, key, default)
    return value if value in choices else default
