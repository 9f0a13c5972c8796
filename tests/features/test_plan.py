"""plan_rows: the rows a run would process are the rows it then processes, and what it refuses, refused."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.errors import ConfigError, StoreError
from audiosep_kit.features import FeatureStore, extract_to_store, plan_rows
from audiosep_kit.model import EncoderConfig
from audiosep_kit.runtime import FeatureExtractor


@pytest.fixture(scope="module")
def extractor(random_weights):
    """random:0 weights tapped at block1 (the cheapest tap: the store logic is what is tested)."""
    return FeatureExtractor.from_weights(random_weights, EncoderConfig(layer="block1"), batch_size=4)


def _clip(path, seed: int, seconds: float = 0.3, rate: int = 16000) -> None:
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)


@pytest.fixture()
def clips(tmp_path):
    """Five short clips with a corrupt file third (row 2)."""
    folder = tmp_path / "audio"
    folder.mkdir()
    paths = []
    for i in range(5):
        _clip(folder / f"c{i}.wav", i)
        paths.append(folder / f"c{i}.wav")
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00junk" * 10)
    return paths[:2] + [corrupt] + paths[2:]


def test_a_fresh_store_runs_every_row_in_chunk_size_shards_and_nothing_is_written(clips, tmp_path):
    plan = plan_rows(clips, tmp_path / "store", chunk_size=4)
    assert plan.store == "new" and plan.rows == list(range(6)) and plan.kept == 0
    assert plan.shards == 2 and plan.describe()["rows_new"] == 6
    assert plan_rows(clips, tmp_path / "store", chunk_size=1).shards == 6
    assert not (tmp_path / "store").exists()


def test_a_resumed_store_plans_exactly_the_rows_the_run_then_processes(extractor, clips, tmp_path):
    """Pending rows (journal cut as by a kill), a changed file, and a permanent error only with
    retry_failed: the plan's rows and reasons are the run's own ``last_run`` counts."""
    root = tmp_path / "store"
    extract_to_store(extractor, clips, root, chunk_size=2, progress=False)
    journal = (root / "journal.jsonl").read_text().splitlines(keepends=True)
    (root / "journal.jsonl").write_text("".join(journal[:4]))  # rows 0-3 recorded, 4 and 5 pending
    _clip(clips[1], seed=99)  # same length, other content
    os.utime(clips[1], ns=(1_000_000_000, 1_000_000_000))

    plan = plan_rows(clips, root, chunk_size=2, extractor=extractor)
    assert (plan.store, plan.rows, plan.kept) == ("resume", [1, 4, 5], 3)
    assert plan.reasons == {"new": 2, "retried": 0, "changed": 1}
    retry = plan_rows(clips, root, chunk_size=2, retry_failed=True)
    assert retry.rows == [1, 2, 4, 5] and retry.shards == 2

    extract_to_store(extractor, clips, root, chunk_size=2, retry_failed=True, progress=False)
    run = FeatureStore.open(root).manifest["last_run"]
    assert run["rows_processed"] == len(retry.rows)
    assert {k: run[f"rows_{k}"] for k in retry.reasons} == retry.reasons
    assert plan_rows(clips, root, chunk_size=2, retry_failed=True).rows == [2]  # the corrupt file, again


def test_what_the_run_would_refuse_the_plan_refuses(extractor, random_weights, clips, tmp_path):
    root = tmp_path / "store"
    extract_to_store(extractor, clips[:3], root, progress=False)
    with pytest.raises(StoreError, match=r"another configuration \(sources_sha256"):
        plan_rows(clips, root)
    other = FeatureExtractor.from_weights(random_weights, EncoderConfig(layer="block2"))
    with pytest.raises(StoreError, match=r"another configuration \(encoder"):
        plan_rows(clips[:3], root, extractor=other)
    assert plan_rows(clips, root, overwrite=True).store == "overwrite"
    assert len(plan_rows(clips, root, overwrite=True).rows) == len(clips)
    with pytest.raises(ConfigError, match="`chunk_size` must be >= 1; got 0"):
        plan_rows(clips, root, chunk_size=0)
