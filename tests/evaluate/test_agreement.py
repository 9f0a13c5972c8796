"""feature_agreement: two backends' stores compared clip by clip, over the clips both extracted."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.evaluate._agreement import feature_agreement
from audiosep_kit.features import extract_to_store


class _Extractor:
    """Enough of FeatureExtractor for a store: (mean, std, length, 1) of each wave, times ``scale``;
    a batch holding a wave of length ``fail`` raises."""

    fixed_width = True
    config = SimpleNamespace(pooling="mean", output_dim=4, pad_to_32=True, layer="center")

    def __init__(self, scale: float = 1.0, fail: int | None = None):
        self.scale, self.fail = scale, fail

    def describe(self) -> dict:
        encoder = {"film": "none", "layer": "center", "pooling": "mean", "pad_to_32": True, "output_dim": 4}
        return {
            "weights": {"sha256": "0" * 64, "source": "fake.ckpt", "random_weights": False},
            "backend": "eager", "precision": "fp32", "executed": {"device": "cpu"},
            "encoder": {**encoder, "condition_sha256": None}, "resampler": "soxr-HQ", "sample_rate": 32000,
            "versions": {"python": "3"}, "date": "2025-01-01T00:00:00+00:00",
        }  # fmt: skip

    def embed_waves(self, waves):
        if any(len(w) == self.fail for w in waves):
            raise RuntimeError("this clip fails on this backend")
        return [self.scale * np.array([w.mean(), w.std(), len(w), 1.0], np.float32) for w in waves]


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(4):
        path = tmp_path / "audio" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.normal(size=16000 + 4000 * i)).astype(np.float32), 16000, subtype="PCM_16")
        out.append(path)
    return out


def _report(extractor, clips, root: Path) -> dict:
    extract_to_store(extractor, clips, root / "store")
    return {"provenance": {"cache": {"path": str(root)}}}


def test_identical_stores_agree_exactly(clips, tmp_path):
    a, b = _report(_Extractor(), clips, tmp_path / "a"), _report(_Extractor(), clips, tmp_path / "b")
    assert feature_agreement(b, a) == {"n_rows": 4, "min_cosine": pytest.approx(1.0), "max_rel_err": 0.0}


def test_a_scaled_backend_keeps_its_cosine_and_shows_its_error(clips, tmp_path):
    a, b = _report(_Extractor(), clips, tmp_path / "a"), _report(_Extractor(1.01), clips, tmp_path / "b")
    found = feature_agreement(b, a)
    assert found["min_cosine"] == pytest.approx(1.0) and found["max_rel_err"] == pytest.approx(0.01, rel=1e-3)


def test_only_clips_both_extracted_are_compared(clips, tmp_path):
    """A clip that failed on one backend is not compared (its NaN row would poison the numbers)."""
    failing = len(sf.read(clips[2])[0]) * 2  # decoded at 32 kHz
    a = _report(_Extractor(), clips, tmp_path / "a")
    b = _report(_Extractor(fail=failing), clips, tmp_path / "b")
    found = feature_agreement(b, a)
    assert found["n_rows"] == 3 and np.isfinite(found["min_cosine"])


def test_runs_without_a_store_have_no_agreement(clips, tmp_path):
    a = _report(_Extractor(), clips, tmp_path / "a")
    assert feature_agreement({"provenance": {}}, a) is None
    assert feature_agreement({"provenance": {"cache": {"path": str(tmp_path / "nowhere")}}}, a) is None
