"""The golden-lite weight recipe (README.md §1 in this folder): 129 encoder tensors and the condition.

No weights are stored with golden-lite, so the tests rebuild them here and check each tensor against
``provenance.json → weights → keys → <key> → sha256_le`` before trusting any network output.
This is test code, not package code: the package must not be the thing that both makes and checks
the reference weights. It is loaded from ``tests/conftest.py`` by file path (the tests folder is not
a package under ``--import-mode=importlib``), and its name keeps pytest from collecting it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

SEED = 20261201
CONDITION_SIZE = 512
COUNTER_VALUE = 1000
STFT_KEYS = ("ss_model.base.stft.conv_real.weight", "ss_model.base.stft.conv_imag.weight")
BATCHNORMS = ("bn0", "bn1", "bn2")


def key_specs(provenance: dict) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``key -> (shape, dtype)`` in provenance order; shape ``scalar`` means ``()``."""
    specs = {}
    for key, entry in provenance["weights"]["keys"].items():
        shape = () if entry["shape"] == "scalar" else tuple(int(n) for n in entry["shape"].split("x"))
        specs[key] = (shape, np.dtype(entry["dtype"]))
    return specs


def stft_kernels(n_fft: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """torchlibrosa 0.1.0's conv_real / conv_imag, built its way: periodic Hann × ω^(integer meshgrid).

    Re-stated here instead of calling the package's ``dft_kernels`` so that the reference does not
    depend on the code under test; the test suite checks the two agree bit for bit.
    """
    from scipy.signal import get_window

    window = get_window("hann", n_fft, fftbins=True)
    x, y = np.meshgrid(np.arange(n_fft), np.arange(n_fft))
    dft = np.power(np.exp(-2 * np.pi * 1j / n_fft), x * y)  # complex128 power of integer exponents
    bins = n_fft // 2 + 1
    kernel = dft[:, :bins] * window[:, None]
    real = np.ascontiguousarray(np.real(kernel).T[:, None, :].astype(np.float32))
    imag = np.ascontiguousarray(np.imag(kernel).T[:, None, :].astype(np.float32))
    return real, imag


def _from_uniform(key: str, u: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """README §1 step 3 for one non-STFT key, in float64 (the caller casts once)."""
    parts = key.split(".")
    module, leaf = parts[-2], parts[-1]
    if module in BATCHNORMS:
        if leaf == "weight":
            return 0.5 + u
        if leaf == "bias":
            return (2 * u - 1) * 0.1
        if leaf == "running_mean":
            return u * 2 if module == "bn0" else (2 * u - 1) * 0.1
        if leaf == "running_var":
            return 0.5 + u * 4 if module == "bn0" else 0.5 + u
        if leaf == "num_batches_tracked":
            return np.full(shape, COUNTER_VALUE, dtype=np.int64)  # its u is drawn and ignored
    elif leaf == "weight" and len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return (2 * u - 1) * np.sqrt(2.0 / fan_in)
    elif leaf == "bias":
        return (2 * u - 1) * 0.1
    raise ValueError(f"golden-lite recipe has no rule for {key!r} with shape {shape}")


def recipe_arrays(provenance: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The 129 tensors (numpy, ``ss_model.``-prefixed keys, provenance order) and the condition.

    One PCG64 stream; ``u`` is drawn for every key, STFT kernels and counters included, so the
    stream stays in step; the condition is the 512 draws after the last key.
    """
    rng = np.random.Generator(np.random.PCG64(SEED))
    kernels = dict(zip(STFT_KEYS, stft_kernels(), strict=False))
    tensors: dict[str, np.ndarray] = {}
    for key, (shape, dtype) in key_specs(provenance).items():
        u = np.asarray(rng.random(shape, dtype=np.float64))
        value = kernels[key] if key in kernels else _from_uniform(key, u, shape)
        tensors[key] = np.asarray(value).astype(dtype, order="C")  # the one cast; keeps shape ()
        if tensors[key].shape != shape:
            raise ValueError(f"{key}: recipe shape {tensors[key].shape} != provenance {shape}")
    condition = (2 * rng.random(CONDITION_SIZE, dtype=np.float64) - 1).astype(np.float32)
    return tensors, condition


def sha256_le(array: np.ndarray) -> str:
    """sha256 of the little-endian C-order bytes, as ``provenance.json`` records them."""
    return hashlib.sha256(np.asarray(array).astype(array.dtype.newbyteorder("<")).tobytes(order="C")).hexdigest()


def load_provenance(folder: Path) -> dict:
    return json.loads((Path(folder) / "provenance.json").read_text(encoding="utf-8"))
