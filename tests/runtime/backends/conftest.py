"""Golden fixtures for the backend conformance suite: configs, exported artifacts, built backends.

Exports are slow (ONNX ~10 s, AOTInductor ~1.5 min on two cores), so each artifact is made once per
session, lazily, under ``tmp_path_factory`` and shared by every test that asks for the same
(film, pooling, layer, precision). Inductor's own cache is pointed under ``tmp_path_factory`` too, so
that tests write nothing outside their temporary folders. One ``BackendBuilder`` per tier: the full
golden set (``golden_*``; its data fixtures in ``tests/conftest.py`` skip when ``../shared`` is
absent) and golden-lite (``lite_*``; in the repository, never skipped).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

#: EncoderConfig.film -> the mode name used in golden keys; pooling -> golden array kind.
GOLDEN_MODE = {"none": "none", "zero": "zero_condition", "query": "query"}
GOLDEN_KIND = {"mean": "mean", "none": "center"}


@pytest.fixture(scope="session")
def inductor_cache_dir(tmp_path_factory):
    """Send Inductor's compile cache (C++ sources, .so files) under the session's tmp folder."""
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("inductor_cache"))
    yield Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    if previous is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous


class BackendBuilder:
    """Configs, exported artifacts and CPU backends over one tier's weights, each made once, lazily.

    One builder serves the full golden tier and one serves golden-lite, so both tiers run the same
    export and construction code; they differ only in weights, condition and output folder.
    Asking for 'eager' or 'onnx' never compiles an AOTInductor package.
    """

    def __init__(self, weights, condition: np.ndarray, root: Path) -> None:
        self.weights, self.condition, self.root = weights, condition, root
        self._onnx: dict[tuple, Path] = {}
        self._aoti: dict[tuple, Path] = {}
        self._built: dict[tuple, object] = {}

    def config(self, film: str = "none", pooling: str = "mean", layer: str = "center"):
        """EncoderConfig for (film, pooling, layer); query mode gets the tier's condition."""
        from audiosep_kit.model import EncoderConfig

        condition = self.condition if film == "query" else None
        return EncoderConfig(film=film, pooling=pooling, layer=layer, condition=condition)

    def onnx(self, film: str = "none", pooling: str = "mean", layer: str = "center", precision: str = "fp32") -> Path:
        """Path of the .onnx for that config and precision (exported once, ~10 s)."""
        from audiosep_kit.export import export_onnx

        key = (film, pooling, layer, precision)
        if key not in self._onnx:
            target = self.root / f"{'_'.join(key)}.onnx"
            self._onnx[key] = export_onnx(
                self.weights, self.config(*key[:3]), target, precision=precision, verify=False
            ).path
        return self._onnx[key]

    def aoti(self, film: str = "none", pooling: str = "mean", layer: str = "center") -> Path:
        """Path of the .pt2 for that config (compiled once, minutes on two cores)."""
        from audiosep_kit.export import export_aoti

        key = (film, pooling, layer)
        if key not in self._aoti:
            target = self.root / f"{'_'.join(key)}.pt2"
            self._aoti[key] = export_aoti(self.weights, self.config(*key), target, verify=False).path
        return self._aoti[key]

    def backend(
        self, name: str, film: str = "none", pooling: str = "mean", layer: str = "center", precision: str = "fp32"
    ):
        """The CPU backend ``name`` at ``precision`` for that config, built once."""
        from audiosep_kit.runtime.backends import make_backend

        key = (name, film, pooling, layer, precision)
        if key not in self._built:
            options: dict = {}
            if name == "onnx":
                options["model_path"] = self.onnx(film, pooling, layer, precision)
            elif name == "aoti":
                options["model_path"] = self.aoti(film, pooling, layer)
            options["precision"] = precision  # checked against what the backend offers
            self._built[key] = make_backend(name, self.weights, self.config(film, pooling, layer), "cpu", **options)
        return self._built[key]


def _reference(outputs: dict[str, np.ndarray]) -> Callable[[str, str, str], np.ndarray]:
    def ref(clip: str, film: str, pooling: str) -> np.ndarray:
        return outputs[f"{clip}__{GOLDEN_MODE[film]}__{GOLDEN_KIND[pooling]}"]

    return ref


@pytest.fixture(scope="session")
def golden_builder(golden_weights, golden_condition, tmp_path_factory, inductor_cache_dir) -> BackendBuilder:
    """The builder over the full golden set's weights (skips without ../shared)."""
    return BackendBuilder(golden_weights, golden_condition, tmp_path_factory.mktemp("golden_artifacts"))


@pytest.fixture(scope="session")
def golden_config(golden_builder) -> Callable:
    """``make(film, pooling, layer)`` -> EncoderConfig (query mode gets the golden condition)."""
    return golden_builder.config


@pytest.fixture(scope="session")
def golden_onnx(golden_builder) -> Callable[..., Path]:
    """``get(film, pooling, layer, precision)`` -> path of a golden-weights .onnx (exported once)."""
    return golden_builder.onnx


@pytest.fixture(scope="session")
def golden_aoti(golden_builder) -> Callable[..., Path]:
    """``get(film, pooling, layer)`` -> path of a golden-weights .pt2 (compiled once, minutes)."""
    return golden_builder.aoti


@pytest.fixture(scope="session")
def golden_backend(golden_builder) -> Callable:
    """``get(name, film, pooling, layer, precision='fp32')`` -> a CPU backend over the golden weights."""
    return golden_builder.backend


@pytest.fixture(scope="session")
def golden_reference(golden_outputs) -> Callable[[str, str, str], np.ndarray]:
    """``ref(clip, film, pooling)`` -> the golden array for that clip and encoder config."""
    return _reference(golden_outputs)


@pytest.fixture(scope="session")
def lite_builder(lite_weights, lite_condition, tmp_path_factory, inductor_cache_dir) -> BackendBuilder:
    """The builder over the golden-lite recipe weights (in the repository: never skips)."""
    return BackendBuilder(lite_weights, lite_condition, tmp_path_factory.mktemp("lite_artifacts"))


@pytest.fixture(scope="session")
def lite_backend(lite_builder) -> Callable:
    """``get(name, film, pooling, layer, precision='fp32')`` -> a CPU backend over the lite weights."""
    return lite_builder.backend


@pytest.fixture(scope="session")
def lite_reference(lite_outputs) -> Callable[[str, str, str], np.ndarray]:
    """``ref(clip, film, pooling)`` -> the golden-lite array for that clip and encoder config."""
    return _reference(lite_outputs)
