"""Feature cache: same configuration → nothing re-extracted; any key change → re-extracted."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiosep_kit.audio import AudioSegment
from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.features._cache import (
    KEY_FIELDS,
    cache_key,
    cached_features,
    default_cache_dir,
)

DESCRIPTION = {
    "weights": {"sha256": "0" * 64, "source": "fake.ckpt", "random_weights": False},
    "backend": "eager",
    "precision": "fp32",
    "executed": {"device": "cpu"},
    "encoder": {"film": "none", "layer": "center", "pooling": "mean", "pad_to_32": True, "condition_sha256": None,
                "output_dim": 4},
    "resampler": "soxr-HQ",
    "sample_rate": 32000,
    "versions": {"python": "3"},
    "date": "2025-01-01T00:00:00+00:00",
}  # fmt: skip

#: One change per key field, as a (path into describe(), new value) pair.
CHANGES = {
    "weights_sha256": (("weights", "sha256"), "1" * 64),
    "backend": (("backend",), "onnx"),
    "precision": (("precision",), "fp16"),
    "film": (("encoder", "film"), "zero"),
    "condition_sha256": (("encoder", "condition_sha256"), "c" * 64),
    "layer": (("encoder", "layer"), "block6"),
    "pooling": (("encoder", "pooling"), "max"),
    "pad_to_32": (("encoder", "pad_to_32"), False),
    "resampler": (("resampler",), "soxr-VHQ"),
}


class FakeExtractor:
    """Enough of FeatureExtractor for the runtime store; counts how many clips it embedded."""

    fixed_width = True
    config = SimpleNamespace(pooling="mean", output_dim=4, pad_to_32=True, layer="center")

    def __init__(self, change: tuple | None = None):
        self.description = copy.deepcopy(DESCRIPTION)
        if change is not None:
            (*parents, leaf), value = change
            target = self.description
            for part in parents:
                target = target[part]
            target[leaf] = value
        self.embedded = 0

    def describe(self) -> dict:
        return copy.deepcopy(self.description)

    def embed_waves(self, waves):
        self.embedded += len(waves)
        return [np.array([w.mean(), w.std(), len(w), 1.0], np.float32) for w in waves]


@pytest.fixture
def clips(tmp_path: Path) -> list[AudioSegment]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        path = tmp_path / "audio" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.normal(size=1600 + 400 * i)).astype(np.float32), 16000, subtype="PCM_16")
        out.append(AudioSegment(path))
    return out


@pytest.fixture
def store_module():
    return pytest.importorskip("audiosep_kit.features._store", reason="runtime.store not available")


def test_second_evaluation_reextracts_nothing(clips, tmp_path, store_module):
    fx = FakeExtractor()
    first = cached_features(fx, clips, tmp_path / "cache")
    assert first.extracted and fx.embedded == 3 and first.ok.all()
    second = cached_features(fx, clips, tmp_path / "cache")
    assert not second.extracted and fx.embedded == 3
    np.testing.assert_array_equal(first.features, second.features)
    assert first.key == second.key and (second.path / "cache.json").is_file()


def test_a_cache_hit_is_announced(clips, tmp_path, store_module, caplog):
    fx = FakeExtractor()
    with caplog.at_level("INFO", logger="audiosep_kit.features"):
        cached_features(fx, clips, tmp_path / "cache")
        assert "features: extracting 3 clips into the cache" in caplog.text
        caplog.clear()
        hit = cached_features(fx, clips, tmp_path / "cache")
    assert f"features: cache hit {hit.key[:16]} (3 clips), no extraction" in caplog.text


@pytest.mark.parametrize("field", KEY_FIELDS)
def test_any_key_change_reextracts(field, clips, tmp_path, store_module):
    cached_features(FakeExtractor(), clips, tmp_path / "cache")
    changed = FakeExtractor(CHANGES[field])
    result = cached_features(changed, clips, tmp_path / "cache")
    assert result.extracted and changed.embedded == 3
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_every_key_field_has_a_change_case():
    assert set(CHANGES) == set(KEY_FIELDS)


def test_a_touched_audio_file_is_reextracted(clips, tmp_path, store_module):
    cached_features(FakeExtractor(), clips, tmp_path / "cache")
    stat = clips[1].path.stat()
    os.utime(clips[1].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    fx = FakeExtractor()
    assert cached_features(fx, clips, tmp_path / "cache").extracted and fx.embedded == 3


def test_segments_and_order_enter_the_key(clips):
    base = cache_key(DESCRIPTION, clips)
    cut = [AudioSegment(clips[0].path, start_s=0.0, end_s=0.05), *clips[1:]]
    assert cache_key(DESCRIPTION, cut) != base
    assert cache_key(DESCRIPTION, clips[::-1]) != base
    assert cache_key({**DESCRIPTION, "executed": {"device": "cuda"}}, clips) == base  # device is not a key


def test_missing_key_field_is_an_error_not_a_guess(clips):
    description = copy.deepcopy(DESCRIPTION)
    del description["encoder"]["layer"]
    with pytest.raises(ConfigError, match="lacks 'encoder.layer'"):
        cache_key(description, clips)


def test_failed_clips_are_reported_per_row(clips, tmp_path, store_module):
    missing = AudioSegment(tmp_path / "audio" / "gone.wav")
    result = cached_features(FakeExtractor(), [*clips, missing], tmp_path / "cache")
    assert result.ok.tolist() == [True, True, True, False]
    assert "gone.wav" in result.index.loc[3, "error"]


class FakeStoreBackend:
    """Injected extract/open pair that keeps stores in memory: the cache logic without the runtime."""

    def __init__(self, complete: bool = True):
        self.stores: dict[Path, SimpleNamespace] = {}
        self.extract_calls = 0
        self.complete = complete

    def extract(self, extractor, sources, out_dir):
        self.extract_calls += 1
        status = "ok" if self.complete else "pending"
        store = SimpleNamespace(
            features=np.arange(len(sources) * 2, dtype=np.float32).reshape(-1, 2),
            index=pd.DataFrame({"path": [str(s.path) for s in sources], "status": status, "error": ""}),
            manifest={"format_version": 1},
        )
        self.stores[out_dir] = store
        out_dir.mkdir(parents=True, exist_ok=True)
        return store

    def open(self, path):
        return self.stores[path]


def test_injected_extraction_is_called_once(clips, tmp_path):
    fake = FakeStoreBackend()
    for _ in range(3):
        result = cached_features(FakeExtractor(), clips, tmp_path / "c", extract=fake.extract, open_store=fake.open)
    assert fake.extract_calls == 1 and not result.extracted and result.features.shape == (3, 2)


def test_an_interrupted_extraction_leaves_no_marker_and_is_resumed(clips, tmp_path):
    fake = FakeStoreBackend(complete=False)
    cached_features(FakeExtractor(), clips, tmp_path / "c", extract=fake.extract, open_store=fake.open)
    cached_features(FakeExtractor(), clips, tmp_path / "c", extract=fake.extract, open_store=fake.open)
    assert fake.extract_calls == 2
    assert not list((tmp_path / "c").glob("*/cache.json"))


def test_unknown_cache_version_is_refused(clips, tmp_path):
    fake = FakeStoreBackend()
    result = cached_features(FakeExtractor(), clips, tmp_path / "c", extract=fake.extract, open_store=fake.open)
    (result.path / "cache.json").write_text(json.dumps({"format_version": 42}))
    with pytest.raises(StoreError, match=r"cache\.json has format_version 42; this audiosep-kit reads \[2\]"):
        cached_features(FakeExtractor(), clips, tmp_path / "c", extract=fake.extract, open_store=fake.open)


def test_empty_sources_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no audio sources"):
        cached_features(FakeExtractor(), [], tmp_path / "c")


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" / "features"
    monkeypatch.delenv("AUDIOSEP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "audiosep-kit" / "features"
