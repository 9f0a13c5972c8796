"""Speech Commands readers: official lists, word labels, the 12-class mapping (unknown + silence), v0.01."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks import TASKS, load_examples
from audiosep_kit.evaluate.tasks._speechcommands import (
    CORE_WORDS,
    SILENCE,
    TWELVE_LABELS,
    UNKNOWN,
    V1_WORDS,
    V2_WORDS,
    segment_splits,
    speaker_of,
)


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def test_word_sets() -> None:
    """v0.02 has 35 words, v0.01 30 (its subset); the 12-class labels are 10 words + unknown + silence."""
    assert len(V2_WORDS) == 35 and len(V1_WORDS) == 30 and set(V1_WORDS) < set(V2_WORDS)
    assert TASKS["speechcommands-v2"].label_names == V2_WORDS
    assert TWELVE_LABELS == (*CORE_WORDS, UNKNOWN, SILENCE) and len(TWELVE_LABELS) == 12


def test_sample_lists_are_subsets_of_the_official_ones(shared_data: Path) -> None:
    """The shared sample's cut lists only hold entries of the official *.full.txt lists."""
    folder = shared_data / "speech_commands_v2"
    for name in ("validation_list", "testing_list"):
        assert set(_lines(folder / f"{name}.txt")) <= set(_lines(folder / f"{name}.full.txt"))


def test_v2_sample_splits_follow_the_lists(shared_data: Path) -> None:
    """All 245 v2 clips load with 35 labels; list entries are valid/test, everything else train."""
    folder = shared_data / "speech_commands_v2"
    examples = load_examples("speechcommands-v2", shared_data)
    assert len(examples) == 245 and {ex.label for ex in examples} == set(range(35))
    valid, test = set(_lines(folder / "validation_list.txt")), set(_lines(folder / "testing_list.txt"))
    for ex in examples:
        entry = f"{ex.path.parent.name}/{ex.path.name}"
        assert ex.split == ("valid" if entry in valid else "test" if entry in test else "train")
        assert TASKS["speechcommands-v2"].label_names[ex.label] == ex.path.parent.name
        assert ex.group == ex.path.name.split("_nohash_")[0]
    assert Counter(ex.split for ex in examples) == {"train": 193, "valid": 25, "test": 27}


def test_known_clip(shared_data: Path) -> None:
    """yes/cfbedff9_nohash_1.wav is 'yes', in testing_list.txt, speaker cfbedff9."""
    examples = load_examples("speechcommands-v2", shared_data)
    clip = next(ex for ex in examples if ex.path.parent.name == "yes" and ex.path.name == "cfbedff9_nohash_1.wav")
    assert (V2_WORDS[clip.label], clip.split, clip.group) == ("yes", "test", "cfbedff9")
    assert speaker_of("cfbedff9_nohash_1.wav") == "cfbedff9"


def test_twelve_class_mapping(shared_data: Path) -> None:
    """v2-12: the 10 core words keep their label, the other 25 words are _unknown_, noise gives _silence_."""
    words = load_examples("speechcommands-v2", shared_data)
    twelve = load_examples("speechcommands-v2-12", shared_data)
    assert [(ex.path, ex.split, ex.group) for ex in twelve[: len(words)]] == [
        (ex.path, ex.split, ex.group) for ex in words
    ]
    for word_example, twelve_example in zip(words, twelve, strict=False):
        word = V2_WORDS[word_example.label]
        assert TWELVE_LABELS[twelve_example.label] == (word if word in CORE_WORDS else UNKNOWN)
    counts = Counter(TWELVE_LABELS[ex.label] for ex in twelve)
    assert counts[UNKNOWN] == 25 * 7 and all(counts[word] == 7 for word in CORE_WORDS)


def test_silence_segments(shared_data: Path) -> None:
    """_silence_ = 1-s segments of each noise recording (95 + 61), split 80/10/10 in contiguous blocks."""
    silence = [ex for ex in load_examples("speechcommands-v2-12", shared_data) if ex.label == 11]
    assert len(silence) == 95 + 61
    assert all(ex.end_s - ex.start_s == 1.0 and ex.path.parent.name == "_background_noise_" for ex in silence)
    dishes = [ex for ex in silence if ex.path.stem == "doing_the_dishes"]
    assert [ex.start_s for ex in dishes] == [float(k) for k in range(95)]
    assert Counter(ex.split for ex in dishes) == {"train": 76, "valid": 9, "test": 10}
    assert dishes[75].split == "train" and dishes[76].split == "valid" and dishes[85].split == "test"
    groups = {f"_background_noise_/doing_the_dishes:{split}" for split in ("train", "valid", "test")}
    assert {ex.group for ex in dishes} == groups
    info = sf.info(str(dishes[0].path))
    assert dishes[-1].end_s <= info.frames / info.samplerate


def test_segment_splits_rule() -> None:
    """segment_splits: floor(0.8 n) train, up to floor(0.9 n) valid, the rest test."""
    assert segment_splits(10) == ["train"] * 8 + ["valid", "test"]
    assert Counter(segment_splits(61)) == {"train": 48, "valid": 6, "test": 7}
    assert segment_splits(0) == []


def test_v1_from_the_sc09_sample(shared_data: Path) -> None:
    """v0.01 reads speech_commands_sc09/ with lists in v1_lists/; 20 of 30 words absent unless allowed."""
    with pytest.raises(DatasetError, match=r"20 of 30 word folder\(s\) absent \(bed, bird, cat .*allow_missing"):
        load_examples("speechcommands-v1", shared_data)
    examples = load_examples("speechcommands-v1", shared_data, allow_missing=True)
    assert len(examples) == 30
    assert {V1_WORDS[ex.label] for ex in examples} == {
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    }  # fmt: skip
    lists_dir = shared_data / "speech_commands_sc09" / "v1_lists"
    lists = {
        "valid": set(_lines(lists_dir / "validation_list.txt")),
        "test": set(_lines(lists_dir / "testing_list.txt")),
    }
    for ex in examples:
        entry = f"{ex.path.parent.name}/{ex.path.name}"
        expected = next((split for split, entries in lists.items() if entry in entries), "train")
        assert ex.split == expected
    twelve = load_examples("speechcommands-v1-12", shared_data, allow_missing=True)
    assert {TWELVE_LABELS[ex.label] for ex in twelve} == {UNKNOWN}


def _copy_words(shared_data: Path, root: Path, words: tuple[str, ...]) -> Path:
    source, folder = shared_data / "speech_commands_v2", root / "speech_commands_v2"
    for word in words:
        shutil.copytree(source / word, folder / word)
    for name in ("validation_list.txt", "testing_list.txt"):
        shutil.copy(source / name, folder / name)
    return folder


def test_partial_copy_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """Two of 35 words present: the error counts absent folders and listed-but-absent files."""
    _copy_words(shared_data, tmp_path, ("yes", "no"))
    with pytest.raises(DatasetError, match=r"33 of 35 word folder\(s\) absent .* named in the official lists absent"):
        load_examples("speechcommands-v2", tmp_path)
    examples = load_examples("speechcommands-v2", tmp_path, allow_missing=True)
    assert {V2_WORDS[ex.label] for ex in examples} == {"yes", "no"} and len(examples) == 14


def test_twelve_class_without_background_noise_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """The 12-class task needs the _background_noise_ recordings for _silence_; absent, it says so."""
    _copy_words(shared_data, tmp_path, V2_WORDS)
    with pytest.raises(DatasetError, match=r"no background-noise \.wav in .*_background_noise_: the _silence_"):
        load_examples("speechcommands-v2-12", tmp_path)
    assert len(load_examples("speechcommands-v2", tmp_path)) == 245
