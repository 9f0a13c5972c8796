"""Backends: interchangeable engines that run the same encoder on a (B, L) float32 batch.

Each backend is a small object with ``name``, ``precision``, ``run(batch) -> features`` and
``executed() -> dict`` (what actually ran: device, providers, threads), built by a factory in the
explicit registry :data:`BACKENDS`, which also says which precisions (names of
``audiosep_kit.numerics.PRECISIONS``) each backend offers, default first. A backend never falls back
silently: if what was asked for is not what runs, the factory raises BackendUnavailableError.
Importing this package imports no optional engine (onnxruntime is imported when a session is made).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import ConfigError
from audiosep_kit.export import ONNX_PRECISIONS
from audiosep_kit.numerics import PRECISIONS
from audiosep_kit.runtime.backends._aoti import make_aoti
from audiosep_kit.runtime.backends._autocast import TORCH_PRECISIONS
from audiosep_kit.runtime.backends._base import Backend
from audiosep_kit.runtime.backends._compiled import make_compiled
from audiosep_kit.runtime.backends._eager import TorchBackend, make_eager
from audiosep_kit.runtime.backends._fast import FAST_PRECISIONS, make_fast
from audiosep_kit.runtime.backends._onnx import make_onnx

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendEntry",
    "artifact_options",
    "TorchBackend",
    "backend_names",
    "backend_options",
    "backend_variants",
    "backends_taking",
    "default_precision",
    "make_backend",
    "needs_cuda",
    "parse_variant",
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
    cuda_only: tuple[str, ...] = ()  # precisions that run on a CUDA device only (refused on CPU)

    def __post_init__(self) -> None:
        if not self.precisions:
            raise ConfigError("a backend must offer at least one precision; got none.")
        for precision in self.precisions:
            check_choice("precision", precision, PRECISIONS)
        for precision in self.cuda_only:
            check_choice("CUDA-only precision", precision, self.precisions)


BACKENDS: dict[str, BackendEntry] = {
    "eager": BackendEntry(make_eager, TORCH_PRECISIONS, cuda_only=TORCH_PRECISIONS[1:]),
    "compile": BackendEntry(make_compiled, TORCH_PRECISIONS, cuda_only=TORCH_PRECISIONS[1:]),
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


def needs_cuda(name: str, precision: str) -> bool:
    """Whether variant ``name:precision`` runs on CUDA only (eager/compile autocast): CPU suites skip it."""
    return precision in BACKENDS[check_choice("backend", name, BACKENDS)].cuda_only


def default_precision(name: str) -> str:
    """The precision backend ``name`` runs when none is asked for."""
    return BACKENDS[check_choice("backend", name, BACKENDS)].precisions[0]


def backend_options(name: str) -> tuple[str, ...] | None:
    """The keyword options backend ``name``'s factory takes (None: it takes any, ``**options``).

    Read from the factory's signature (everything after ``weights, config, device``), so the
    registry needs no second list that could drift from the code.
    """
    factory = BACKENDS[check_choice("backend", name, BACKENDS)].factory
    params = list(inspect.signature(factory).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return tuple(p.name for p in named[3:])


def backends_taking(option: str) -> tuple[str, ...]:
    """The registered backends whose factory takes ``option`` (e.g. 'model_path': onnx, aoti)."""
    return tuple(name for name in BACKENDS if (taken := backend_options(name)) is None or option in taken)


def artifact_options(name: str, precision: str, model_path=None, cache_dir=None) -> dict:
    """Options of backend ``name`` for a precision and, for the backends that load an artifact, a given
    ``model_path`` or the cache root to export into (a cache root is dropped for the others)."""
    options: dict = {"precision": precision}
    if model_path is not None:
        options["model_path"] = model_path
    elif cache_dir is not None and name in backends_taking("cache_dir"):
        options["cache_dir"] = cache_dir
    return options


def _check_options(name: str, options: dict) -> None:
    """An option the backend does not take is a ConfigError saying which backends do, not a TypeError."""
    taken = backend_options(name)
    unknown = [key for key in options if taken is not None and key not in taken]
    if not unknown:
        return
    where = [
        f"{key!r} is an option of the backends {list(others)}" if (others := backends_taking(key)) else
        f"no registered backend takes {key!r} (check its spelling)"
        for key in unknown
    ]  # fmt: skip
    raise ConfigError(
        f"backend {name!r} takes no option {', '.join(repr(k) for k in unknown)} (it takes {list(taken or ())}); "
        + "; ".join(where)
        + ". Drop the option, or choose a backend that takes it."
    )


def _option_value(text: str) -> object:
    """'true'/'false' (also 1/0 spelt yes/no/on/off) -> bool, digits -> int, 'a/b' -> tuple of floats, else str."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "false", "no", "off"):
        return lowered in ("true", "yes", "on")
    if lowered.isdigit():
        return int(lowered)
    if "/" in lowered:
        try:
            return tuple(float(part) for part in lowered.split("/"))
        except ValueError:
            pass
    return text.strip()


def parse_variant(text: str) -> tuple[str, str, dict]:
    """``name[:precision][+key=value...]`` -> (name, precision, options), every part checked.

    ``onnx:fp32+conv_algo_search=HEURISTIC+prefer_nhwc=true`` -> ('onnx', 'fp32', {...}): a configured
    variant as the bench writes it in its rows. Without a precision, the backend's default.
    """
    head, *pairs = text.strip().split("+")
    name, _, precision = head.partition(":")
    precision = precision or default_precision(name)
    check_choice(
        f"precision (of backend {name!r})", precision, BACKENDS[check_choice("backend", name, BACKENDS)].precisions
    )
    options = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(
                f"a backend option is written +key=value; got {pair!r} in {text!r} "
                "(e.g. onnx:fp32+conv_algo_search=HEURISTIC)."
            )
        options[key.strip()] = _option_value(value)
    _check_options(name, options)
    return name, precision, options


def make_backend(name: str, weights, config, device: str = "cpu", **options) -> Backend:
    """Build backend ``name``; unknown names raise a ConfigError listing the valid ones.

    ``precision=`` is checked against what the backend offers, and passed on only to backends that
    offer a choice (a single-precision backend takes no such option). Any other option the backend's
    factory does not take (``model_path`` for eager, say) is a ConfigError naming the backends that do.
    """
    entry = BACKENDS[check_choice("backend", name, BACKENDS)]
    if "precision" in options:
        check_choice(f"precision (of backend {name!r})", options["precision"], entry.precisions)
        if len(entry.precisions) == 1:
            options.pop("precision")
    _check_options(name, options)
    return entry.factory(weights, config, device, **options)
