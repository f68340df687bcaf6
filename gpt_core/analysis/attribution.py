"""The former home of input attribution, kept for the app session's import of it: the
module is input_attribution.py."""

from .input_attribution import Explained, attribute

__all__ = ["Explained", "attribute"]
