"""UrbanSound8K reader: the 10 predefined folds, class ids, fold folders, groups and completeness."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks import TASKS, load_examples, load_metadata


def test_sample_reads_with_allow_missing(shared_data: Path) -> None:
    """The 11 sample clips (allow_missing=True: the csv lists 8732) load with labels 0..9 and their folds."""
    examples = load_examples("urbansound8k", shared_data, allow_missing=True)
    assert len(examples) == 11
    assert all(0 <= ex.label < 10 for ex in examples)
    assert {ex.split for ex in examples} == {"1", "2", "5", "7", "10"}
    assert all(ex.path.parent.name == f"fold{ex.split}" for ex in examples)


def test_known_clips(shared_data: Path) -> None:
    """Known rows: 100652-3-0-0 is dog_bark in fold 2, 100648-1-2-0 car_horn in fold 10 (fsID groups)."""
    names = TASKS["urbansound8k"].label_names
    examples = {ex.path.name: ex for ex in load_examples("urbansound8k", shared_data, allow_missing=True)}
    dog = examples["100652-3-0-0.wav"]
    assert (names[dog.label], dog.label, dog.split, dog.group) == ("dog_bark", 3, "2", "100652")
    horn = examples["100648-1-2-0.wav"]
    assert (names[horn.label], horn.split, horn.group) == ("car_horn", "10", "100648")


def test_metadata_covers_all_folds(shared_data: Path) -> None:
    """The metadata view has all 8732 slices over the 10 folds and all 10 classes."""
    examples = load_metadata("urbansound8k", shared_data)
    assert len(examples) == 8732
    assert {ex.split for ex in examples} == set(TASKS["urbansound8k"].splits)
    assert {ex.label for ex in examples} == set(range(10))


def test_missing_audio_is_refused_by_default(shared_data: Path) -> None:
    """The cut-down sample is refused unless allow_missing, with the count and the fold paths."""
    with pytest.raises(DatasetError, match=r"8721 of 8732 audio files .* e\.g\. audio/fold5/"):
        load_examples("urbansound8k", shared_data)


def test_missing_metadata_names_the_file(tmp_path: Path) -> None:
    """A folder without metadata/UrbanSound8K.csv names that file."""
    (tmp_path / "urbansound8k").mkdir()
    with pytest.raises(DatasetError, match=r"metadata file not found: .*metadata/UrbanSound8K\.csv"):
        load_examples("urbansound8k", tmp_path)
