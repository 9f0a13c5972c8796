"""LibriSpeech speaker-id reader: label names from data, the per-speaker SHA-1 split, and its checksum."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks import TASKS, load_examples, load_metadata, resolve_task, split_manifest
from audiosep_kit.evaluate.tasks._librispeech import split_of_speaker

#: split_manifest of the shared sample (3 speakers x 10 utterances); changes iff the split rule changes.
SAMPLE_MANIFEST = "a9d090122c6d0ae9975c1e6851a771ef5df799f26b44debb8975a5c37b16a18d"


def test_label_names_are_train_clean_100_speakers(shared_data: Path) -> None:
    """resolve_task reads the speaker folders of train-clean-100, sorted numerically (test-clean excluded)."""
    task = resolve_task("librispeech-speaker", shared_data)
    assert task.label_names == ("4088", "5652", "8226")
    assert task.splits == TASKS["librispeech-speaker"].splits


def test_sample_split_is_80_10_10_per_speaker(shared_data: Path) -> None:
    """Each sample speaker's 10 utterances split 8/1/1; labels index resolve_task's speakers."""
    task = resolve_task("librispeech-speaker", shared_data)
    examples = load_examples("librispeech-speaker", shared_data)
    assert len(examples) == 30
    for label, speaker in enumerate(task.label_names):
        mine = [ex for ex in examples if ex.label == label]
        assert all(ex.path.stem.startswith(f"{speaker}-") for ex in mine)
        assert Counter(ex.split for ex in mine) == {"train": 8, "valid": 1, "test": 1}
    assert all(ex.group == ex.path.stem for ex in examples)


def test_split_rule_is_order_free_and_stable() -> None:
    """split_of_speaker depends only on the utterance ids, not on their order; tiny speakers are all train."""
    utterances = [f"19-198-{i:04d}" for i in range(37)]
    shuffled = utterances[:]
    random.Random(0).shuffle(shuffled)
    assert split_of_speaker(utterances) == split_of_speaker(shuffled)
    assert Counter(split_of_speaker(utterances).values()) == {"train": 31, "valid": 3, "test": 3}
    assert set(split_of_speaker(utterances[:2]).values()) == {"train"}


def test_manifest_checksum_is_deterministic(shared_data: Path) -> None:
    """Two loads give the same examples and the published checksum; moving one utterance changes it."""
    first = load_examples("librispeech-speaker", shared_data)
    assert load_examples("librispeech-speaker", shared_data) == first
    checksum = split_manifest(first)
    assert checksum == SAMPLE_MANIFEST
    assert split_manifest(list(reversed(first))) == checksum
    moved = [replace(first[0], split="test"), *first[1:]]
    assert first[0].split != "test" and split_manifest(moved) != checksum


def test_missing_flac_is_refused_and_skipping_keeps_splits(shared_data: Path, tmp_path: Path) -> None:
    """A transcribed utterance without audio is missing data; skipping it moves no other utterance."""
    source = shared_data / "librispeech" / "LibriSpeech" / "train-clean-100"
    target = tmp_path / "librispeech" / "LibriSpeech" / "train-clean-100"
    shutil.copytree(source, target)
    removed = sorted(target.rglob("*.flac"))[0]
    removed.unlink()
    with pytest.raises(DatasetError, match=rf"1 of 30 audio files listed in the \*\.trans\.txt .*{removed.name}"):
        load_examples("librispeech-speaker", tmp_path)
    kept = {ex.path.stem: ex.split for ex in load_examples("librispeech-speaker", tmp_path, allow_missing=True)}
    full = {ex.path.stem: ex.split for ex in load_metadata("librispeech-speaker", tmp_path)}
    assert len(kept) == 29 and all(full[utt] == split for utt, split in kept.items())


def test_missing_subset_folder_is_named(tmp_path: Path) -> None:
    """A librispeech/ folder without train-clean-100 names the two places it looked."""
    (tmp_path / "librispeech" / "LibriSpeech" / "test-clean").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"subset folder not found: .*LibriSpeech/train-clean-100 and "):
        load_examples("librispeech-speaker", tmp_path)
