"""Backends: interchangeable engines that run the same encoder on a (B, L) float32 batch.

Each backend is a small object with ``name``, ``precision``, ``run(batch) -> features`` and
``executed() -> dict`` (what actually ran: device, providers, threads), built by a factory in the
explicit registry :data:`BACKENDS`, which also says which precisions (names of
``audiosep_kit.numerics.PRECISIONS``) each backend offers, default first. A backend never falls back
silently: if what was asked for is not what runs, the factory raises BackendUnavailableError.
Importing this package imports no optional engine (onnxruntime is imported when a session is made).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.export import ONNX_PRECISIONS
from audiosep_kit.numerics import PRECISIONS
from audiosep_kit.runtime.backends._aoti import make_aoti
from audiosep_kit.runtime.backends._base import Backend
from audiosep_kit.runtime.backends._compiled import make_compiled
from audiosep_kit.runtime.backends._eager import TorchBackend, make_eager
from audiosep_kit.runtime.backends._fast import FAST_PRECISIONS, make_fast
from audiosep_kit.runtime.backends._onnx import make_onnx

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendEntry",
    "TorchBackend",
    "backend_names",
    "backend_variants",
    "default_precision",
    "make_backend",
    "register_backend",
]


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend: its factory and the precisions it offers (the first is its default).

    ``factory(weights, config, device, **options) -> Backend``; a backend offering more than one
    precision takes ``precision=`` among its options.
    """

    factory: Callable[..., Backend]
    precisions: tuple[str, ...] = ("fp32",)

    def __post_init__(self) -> None:
        if not self.precisions:
            raise ConfigError("a backend must offer at least one precision; got none.")
        for precision in self.precisions:
            check_choice("precision", precision, PRECISIONS)


BACKENDS: dict[str, BackendEntry] = {
    "eager": BackendEntry(make_eager),
    "compile": BackendEntry(make_compiled),
    "onnx": BackendEntry(make_onnx, ONNX_PRECISIONS),
    "aoti": BackendEntry(make_aoti),
    "fast": BackendEntry(make_fast, FAST_PRECISIONS),
}


def register_backend(name: str, factory: Callable[..., Backend], precisions: tuple[str, ...] = ("fp32",)) -> None:
    """Add a backend (an extension's); it joins ``backend_variants()`` and so every conformance check."""
    BACKENDS[name] = BackendEntry(factory, precisions)


def backend_names() -> tuple[str, ...]:
    """Every registered backend name, in registry order."""
    return tuple(BACKENDS)


def backend_variants() -> list[tuple[str, str]]:
    """Every (backend, precision) pair the registry offers: what conformance and parity must cover."""
    return [(name, precision) for name, entry in BACKENDS.items() for precision in entry.precisions]


def default_precision(name: str) -> str:
    """The precision backend ``name`` runs when none is asked for."""
    return BACKENDS[check_choice("backend", name, BACKENDS)].precisions[0]


def make_backend(name: str, weights, config, device: str = "cpu", **options) -> Backend:
    """Build backend ``name``; unknown names raise a ConfigError listing the valid ones.

    ``precision=`` is checked against what the backend offers, and passed on only to backends that
    offer a choice (a single-precision backend takes no such option).
    """
    entry = BACKENDS[check_choice("backend", name, BACKENDS)]
    if "precision" in options:
        check_choice(f"precision (of backend {name!r})", options["precision"], entry.precisions)
        if len(entry.precisions) == 1:
            options.pop("precision")
    return entry.factory(weights, config, device, **options)
