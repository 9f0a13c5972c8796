"""Golden-set fixtures for the backend conformance suite: configs, exported artifacts, built backends.

Exports are slow (ONNX ~10 s, AOTInductor ~1.5 min on two cores), so each artifact is made once per
session, lazily, under ``tmp_path_factory`` and shared by every test that asks for the same
(film, pooling, layer). Inductor's own cache is pointed under ``tmp_path_factory`` too, so that
tests write nothing outside their temporary folders. The golden data fixtures themselves come from
``tests/conftest.py`` and skip when ``../shared`` is absent.
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


@pytest.fixture(scope="session")
def golden_config(golden_condition) -> Callable:
    """``make(film, pooling, layer)`` -> EncoderConfig (query mode gets the golden condition)."""
    from audiosep_kit.model._config import EncoderConfig

    def make(film: str = "none", pooling: str = "mean", layer: str = "center") -> EncoderConfig:
        condition = golden_condition if film == "query" else None
        return EncoderConfig(film=film, pooling=pooling, layer=layer, condition=condition)

    return make


@pytest.fixture(scope="session")
def golden_onnx(golden_weights, golden_config, tmp_path_factory) -> Callable[..., Path]:
    """``get(film, pooling, layer, precision)`` -> path of a golden-weights .onnx (exported once)."""
    from audiosep_kit.export._onnx import export_onnx

    root = tmp_path_factory.mktemp("golden_onnx")
    made: dict[tuple, Path] = {}

    def get(film: str = "none", pooling: str = "mean", layer: str = "center", precision: str = "fp32") -> Path:
        key = (film, pooling, layer, precision)
        if key not in made:
            target = root / f"{'_'.join(key)}.onnx"
            config = golden_config(film, pooling, layer)
            made[key] = export_onnx(golden_weights, config, target, precision=precision, verify=False).path
        return made[key]

    return get


@pytest.fixture(scope="session")
def golden_aoti(golden_weights, golden_config, tmp_path_factory, inductor_cache_dir) -> Callable[..., Path]:
    """``get(film, pooling, layer)`` -> path of a golden-weights .pt2 (compiled once, minutes)."""
    from audiosep_kit.export._aoti import export_aoti

    root = tmp_path_factory.mktemp("golden_aoti")
    made: dict[tuple, Path] = {}

    def get(film: str = "none", pooling: str = "mean", layer: str = "center") -> Path:
        key = (film, pooling, layer)
        if key not in made:
            target = root / f"{'_'.join(key)}.pt2"
            made[key] = export_aoti(golden_weights, golden_config(film, pooling, layer), target, verify=False).path
        return made[key]

    return get


@pytest.fixture(scope="session")
def golden_backend(golden_weights, golden_config, golden_onnx, golden_aoti, inductor_cache_dir) -> Callable:
    """``get(name, film, pooling, layer)`` -> a CPU backend over the golden weights, built once.

    Artifacts are made lazily: asking for 'eager' or 'onnx' never compiles an AOTInductor package.
    """
    from audiosep_kit.runtime.backends import make_backend

    built: dict[tuple, object] = {}
    artifacts = {"onnx": golden_onnx, "aoti": golden_aoti}

    def get(name: str, film: str = "none", pooling: str = "mean", layer: str = "center"):
        key = (film, pooling, layer)
        if (name, key) not in built:
            options = {"model_path": artifacts[name](*key)} if name in artifacts else {}
            built[name, key] = make_backend(name, golden_weights, golden_config(*key), "cpu", **options)
        return built[name, key]

    return get


@pytest.fixture(scope="session")
def golden_reference(golden_outputs) -> Callable[[str, str, str], np.ndarray]:
    """``ref(clip, film, pooling)`` -> the golden array for that clip and encoder config."""

    def ref(clip: str, film: str, pooling: str) -> np.ndarray:
        return golden_outputs[f"{clip}__{GOLDEN_MODE[film]}__{GOLDEN_KIND[pooling]}"]

    return ref
