"""Versions of the packages that decide the numbers, for every manifest and report."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = (
    "audiosep-kit",
    "torch",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "soundfile",
    "soxr",
    "scikit-learn",
)


def package_versions() -> dict[str, str]:
    """Installed versions (absent packages are left out) plus Python's."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
