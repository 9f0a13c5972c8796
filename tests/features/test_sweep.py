"""A sweep's stores: each tap in its single configuration's cache entry, resumable, one pass for all."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.audio import AudioSegment
from audiosep_kit.features import cached_features, cached_sweep, extract_sweep_to_stores, extract_to_store
from audiosep_kit.model import EncoderConfig
from audiosep_kit.runtime import FeatureExtractor, SweepExtractor, make_backend

TAPS = [("block1", "mean"), ("block2", "max")]


@pytest.fixture(scope="module")
def sweep(random_weights) -> SweepExtractor:
    return SweepExtractor.from_weights(random_weights)


@pytest.fixture()
def sources(tmp_path) -> list[AudioSegment]:
    """Four short clips: three of 0.5 s (one batch) and a lone 0.3 s one (run doubled)."""
    rng = np.random.default_rng(0)
    out = []
    for i, seconds in enumerate([0.5, 0.3, 0.5, 0.5]):
        path = tmp_path / "audio" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * 32_000))).astype(np.float32), 32_000)
        out.append(AudioSegment(path))
    return out


def _single(sweep, tap, **options) -> FeatureExtractor:
    """The single configuration on the sweep's weights (what from_checkpoint builds, without reloading them)."""
    config = EncoderConfig(layer=tap[0], pooling=tap[1], **options)
    return FeatureExtractor(make_backend("eager", sweep.weights, config), sweep.weights, config)


def test_a_single_run_after_a_sweep_is_a_cache_hit(sweep, sources, tmp_path):
    cache = tmp_path / "cache"
    first = cached_sweep(sweep, TAPS, sources, cache)
    assert [c.extracted for c in first.values()] == [True, True]
    again = cached_sweep(sweep, TAPS, sources, cache)
    assert [c.extracted for c in again.values()] == [False, False]  # a rerun extracts nothing
    for tap in TAPS:
        as_a_user_builds_it = FeatureExtractor.from_checkpoint("random:0", layer=tap[0], pooling=tap[1])
        single = cached_features(as_a_user_builds_it, sources, cache)
        assert single.extracted is False and single.key == first[tap].key
        assert np.array_equal(single.features, first[tap].features)
    # that the stored numbers equal a single run's own extraction: the resume test below


def test_only_the_taps_not_cached_are_extracted(sweep, sources, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cached_features(_single(sweep, TAPS[0]), sources, cache)
    asked = []
    original = sweep.embed_sweep
    monkeypatch.setattr(sweep, "embed_sweep", lambda waves, taps: asked.append(list(taps)) or original(waves, taps))
    result = cached_sweep(sweep, TAPS, sources, cache)
    assert result[TAPS[0]].extracted is False and result[TAPS[1]].extracted is True
    assert asked and all(taps == [TAPS[1]] for taps in asked)


def test_an_interrupted_sweep_resumes_and_keeps_what_it_wrote(sweep, sources, tmp_path, monkeypatch):
    roots = {tap: tmp_path / f"store-{tap[0]}-{tap[1]}" for tap in TAPS}
    original = sweep.embed_sweep
    calls = {"n": 0}

    def dies_on_the_second_chunk(waves, taps):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt  # like a kill: not an error a clip could be blamed for
        return original(waves, taps)

    monkeypatch.setattr(sweep, "embed_sweep", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        extract_sweep_to_stores(sweep, roots, sources, chunk_size=2)
    for root in roots.values():
        assert len((root / "journal.jsonl").read_text().splitlines()) == 2  # the first chunk, committed
    monkeypatch.setattr(sweep, "embed_sweep", original)
    resumed = extract_sweep_to_stores(sweep, roots, sources, chunk_size=2)
    for tap, store in resumed.items():
        assert store.complete and store.manifest["last_run"]["rows_processed"] == 2
        clean = extract_to_store(_single(sweep, tap), sources, tmp_path / f"clean-{tap[0]}", chunk_size=2)
        assert np.array_equal(store.features, clean.features)


def test_a_clip_too_short_for_a_deep_tap_fails_there_only_as_a_single_run_says(sweep, tmp_path):
    """pad_to_32=False: a 0.1 s clip has too few frames for block4 but not for block1."""
    path = tmp_path / "short.wav"
    sf.write(path, (0.1 * np.random.default_rng(1).standard_normal(3200)).astype(np.float32), 32_000)
    sources = [AudioSegment(path)]
    nopad = SweepExtractor.from_weights(sweep.weights, pad_to_32=False)
    taps = [("block1", "mean"), ("block4", "mean")]
    stores = extract_sweep_to_stores(nopad, {tap: tmp_path / tap[0] for tap in taps}, sources)
    assert stores[taps[0]].index["status"].tolist() == ["ok"]
    deep = stores[taps[1]].index.iloc[0]
    single = extract_to_store(_single(sweep, taps[1], pad_to_32=False), sources, tmp_path / "single").index.iloc[0]
    assert deep["status"] == single["status"] == "error" and deep["error"] == single["error"]
    assert "needs >= 4800" in deep["error"] and np.isnan(stores[taps[1]].features).all()


def test_the_store_manifest_is_a_single_runs(sweep, sources, tmp_path):
    store = extract_sweep_to_stores(sweep, {TAPS[1]: tmp_path / "store"}, sources)[TAPS[1]]
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["encoder"] == _single(sweep, TAPS[1]).config.to_dict() and manifest["backend"] == "eager"
    assert manifest["counts"] == {"ok": 4} and store.features.shape == (4, 64)
    # a single run can extend it: same configuration, nothing left to do
    again = extract_to_store(_single(sweep, TAPS[1]), sources, tmp_path / "store")
    assert again.manifest["last_run"]["rows_processed"] == 0
