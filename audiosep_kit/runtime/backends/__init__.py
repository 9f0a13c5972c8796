"""Backends: interchangeable engines that run the same encoder on a (B, L) float32 batch.

Each backend is a small object with ``name``, ``precision``, ``run(batch) -> features`` and
``executed() -> dict`` (what actually ran: device, providers, threads), built by a factory
registered in ``BACKENDS``. A backend never falls back silently: if what was asked for is not
what runs, the factory raises BackendUnavailableError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from audiosep_kit.errors import ConfigError

__all__ = ["Backend", "BACKENDS", "register_backend", "make_backend", "backend_names"]


class Backend(Protocol):
    name: str
    precision: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(B, L) float32 waveforms at 32 kHz, L >= 1025 -> features (B, ...) float32."""

    def executed(self) -> dict:
        """What actually executed (device, execution providers, threads, compile mode ...)."""


#: name -> factory(weights: LoadedWeights, config: EncoderConfig, device: str, **options) -> Backend
BACKENDS: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str) -> Callable:
    def deco(factory: Callable[..., Backend]) -> Callable[..., Backend]:
        BACKENDS[name] = factory
        return factory

    return deco


def _load_builtin() -> None:
    # Imported lazily so that importing the package never imports onnxruntime or compiles anything.
    from audiosep_kit.runtime.backends import eager  # noqa: F401

    for optional in ("onnx_runtime", "compiled", "aoti", "fast_cpu"):
        try:
            __import__(f"audiosep_kit.runtime.backends.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"audiosep_kit.runtime.backends.{optional}":
                raise


def backend_names() -> tuple[str, ...]:
    _load_builtin()
    return tuple(BACKENDS)


def make_backend(name: str, weights, config, device: str = "cpu", **options) -> Backend:
    """Build backend ``name``; unknown names raise a ConfigError listing the valid ones."""
    _load_builtin()
    if name not in BACKENDS:
        valid = ", ".join(repr(n) for n in BACKENDS)
        raise ConfigError(f"`backend` must be one of {{{valid}}}; got {name!r}.")
    return BACKENDS[name](weights, config, device, **options)
