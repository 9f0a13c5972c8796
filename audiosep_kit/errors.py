"""One root exception for the toolkit, with subclasses that also inherit the builtin they refine.

Callers can catch ``AudioSepKitError`` for anything this package raises on purpose, or the builtin
(``ValueError``, ``RuntimeError``, ``OSError``) when they only care about the kind of failure.
"""

from __future__ import annotations

__all__ = [
    "AudioSepKitError",
    "ConfigError",
    "CheckpointError",
    "AudioDecodeError",
    "BackendUnavailableError",
    "ArtifactMismatchError",
    "DatasetError",
    "StoreError",
    "VerificationError",
]


class AudioSepKitError(Exception):
    """Root of every error this package raises deliberately."""


class ConfigError(AudioSepKitError, ValueError):
    """An option has a value outside its allowed set or range."""


class CheckpointError(AudioSepKitError, ValueError):
    """A checkpoint file cannot be read, or does not hold exactly the encoder's tensors."""


class AudioDecodeError(AudioSepKitError, ValueError):
    """An audio input is unreadable, empty, non-finite or otherwise unusable."""


class BackendUnavailableError(AudioSepKitError, RuntimeError):
    """A requested backend, device or execution provider is not actually usable here."""


class ArtifactMismatchError(AudioSepKitError, ValueError):
    """An exported artifact was built from other weights or other encoder options than requested."""


class DatasetError(AudioSepKitError, FileNotFoundError):
    """Dataset files are missing or do not follow the expected layout."""


class StoreError(AudioSepKitError, RuntimeError):
    """A feature store is incompatible with the run that tries to extend it."""


class VerificationError(AudioSepKitError, RuntimeError):
    """An exported artifact does not reproduce eager within its documented tolerance."""
