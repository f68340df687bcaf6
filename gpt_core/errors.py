"""Errors a person can act on. Each message says what went wrong and what to do."""


class GPTCoreError(Exception):
    """Base class: everything gpt_core raises on bad input derives from it."""


class WeightsError(GPTCoreError):
    """A weights source could not be read or does not fit the model."""


class SAEError(GPTCoreError):
    """A sparse autoencoder that cannot be read, or that does not fit the model."""


class PromptError(GPTCoreError, ValueError):
    """A prompt the model cannot take (empty, too long, ids out of the vocabulary)."""


class DeviceError(GPTCoreError):
    """A device was asked for that this machine does not have."""


class Cancelled(GPTCoreError):
    """A run or a load was stopped on request."""


class TraceError(GPTCoreError):
    """A trace file that cannot be read, or a key the trace does not have."""


class ExportError(GPTCoreError):
    """An export path that cannot be written (missing folder, no permission, disk full)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like SIGINT's KeyboardInterrupt so that a write in progress removes
    its temporary file and keeps the old one."""
