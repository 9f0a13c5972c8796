"""Speech Commands readers: official lists, word labels, the 12-class mapping (unknown + silence), v0.01."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
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
    crop_region,
    draw_crops,
    segment_splits,
    silence_count,
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


def test_silence_crops(shared_data: Path) -> None:
    """_silence_ = ceil(10 %) of each split's core-word clips, sample-exact 1-s crops of the noise only,
    each inside its split's own seconds of the recording, and the same crops on every load."""
    twelve = load_examples("speechcommands-v2-12", shared_data)
    silence = [ex for ex in twelve if TWELVE_LABELS[ex.label] == SILENCE]
    core = Counter(ex.split for ex in twelve if ex.label < len(CORE_WORDS))
    assert core == {"train": 51, "valid": 7, "test": 12}
    assert Counter(ex.split for ex in silence) == {"train": 6, "valid": 1, "test": 2}  # ceil(5.1, 0.7, 1.2)
    assert len({ex.key for ex in silence}) == len(silence)
    noise = {path.name for path in (shared_data / "speech_commands_v2" / "_background_noise_").glob("*.wav")}
    for ex in silence:
        assert ex.path.parent.name == "_background_noise_" and ex.path.name in noise
        info = sf.info(str(ex.path))
        start, end = round(ex.start_s * info.samplerate), round(ex.end_s * info.samplerate)
        assert end - start == info.samplerate and start / info.samplerate == ex.start_s
        lo, hi = crop_region(info.frames, info.samplerate, ex.split)
        assert lo <= start and end <= hi
        assert ex.group == f"_background_noise_/{ex.path.stem}:{ex.split}"
    again = [ex for ex in load_examples("speechcommands-v2-12", shared_data) if ex.label == 11]
    assert again == silence


def test_draw_crops_rule() -> None:
    """Distinct, sorted, inside the split's region, capped by the windows there, seeded per split."""
    sizes = [(10 * 100, 100), (20 * 100, 100)]  # 10 s and 20 s at 100 Hz
    crops = draw_crops(sizes, "train", 50)
    assert len(crops) == 50 and crops == sorted(set(crops))
    regions = [crop_region(*size, "train") for size in sizes]
    assert regions == [(0, 800), (0, 1600)]
    assert all(regions[i][0] <= start and start + 100 <= regions[i][1] for i, start in crops)
    assert {i for i, _ in crops} == {0, 1}
    assert draw_crops(sizes, "train", 50) == crops and draw_crops(sizes, "valid", 3) != crops[:3]
    assert len(draw_crops([(100, 100)] * 2, "train", 5)) == 0  # 1-s files: no train second (floor(0.8))
    assert crop_region(1050, 100, "valid") == (800, 900)  # whole seconds only: 10.5 s -> seconds 0..9
    assert draw_crops([(1050, 100)], "valid", 1000) == [(0, 800)]  # one window fits, one comes back
    assert draw_crops(sizes, "test", 0) == []
    assert [silence_count(n) for n in (0, 1, 10, 11, 30000)] == [0, 1, 1, 2, 3000]


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


def _tone(path: Path, seconds: float = 0.1, rate: int = 16_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wave = 0.1 * np.sin(np.linspace(0, 200, int(seconds * rate)))
    sf.write(path, wave.astype(np.float32), rate, subtype="PCM_16")


def _tiny_v1(root: Path, archive: str | None) -> Path:
    """All 30 v0.01 words, one train / valid / test clip each, 20 s of noise; the test archive at
    ``archive`` ("inside" the dataset folder, "beside" it under the data root, or None)."""
    folder = root / "speech_commands_v1"
    for word in V1_WORDS:
        for speaker in ("aaaa0001", "bbbb0002", "cccc0003"):
            _tone(folder / word / f"{speaker}_nohash_0.wav")
    (folder / "validation_list.txt").write_text("".join(f"{w}/bbbb0002_nohash_0.wav\n" for w in V1_WORDS))
    (folder / "testing_list.txt").write_text("".join(f"{w}/cccc0003_nohash_0.wav\n" for w in V1_WORDS))
    _tone(folder / "_background_noise_" / "white_noise.wav", seconds=20.0)
    if archive is not None:
        test_root = (folder if archive == "inside" else root) / "speech_commands_test_set_v0.01"
        for label in TWELVE_LABELS:
            for n in range(2):
                _tone(test_root / label / f"dddd000{n}_nohash_{n}.wav")
    return folder


@pytest.mark.parametrize("where", ["inside", "beside"])
def test_v1_12_reads_the_separate_test_archive(tmp_path: Path, where: str) -> None:
    """With speech_commands_test_set_v0.01/ present, test = its 12 label folders (silence and unknown
    included); testing_list.txt clips and cropped test silence take no part; train/valid as usual."""
    _tiny_v1(tmp_path, where)
    examples = load_examples("speechcommands-v1-12", tmp_path)
    test = [ex for ex in examples if ex.split == "test"]
    assert len(test) == 24 and all(ex.path.parents[1].name == "speech_commands_test_set_v0.01" for ex in test)
    assert Counter(TWELVE_LABELS[ex.label] for ex in test) == {label: 2 for label in TWELVE_LABELS}
    assert all(TWELVE_LABELS[ex.label] == ex.path.parent.name for ex in test)
    assert not any(ex.path.name.startswith("cccc0003") for ex in examples)
    by_split = Counter((ex.split, TWELVE_LABELS[ex.label]) for ex in examples if ex.split != "test")
    assert by_split[("train", UNKNOWN)] == by_split[("valid", UNKNOWN)] == 20
    assert by_split[("train", "yes")] == by_split[("valid", "yes")] == 1
    assert by_split[("train", SILENCE)] == by_split[("valid", SILENCE)] == 1  # ceil(10 % of 10)
    assert all(ex.path.parent.name == "_background_noise_" for ex in examples if ex.split != "test" and ex.label == 11)


def test_v1_12_without_the_archive_tests_on_testing_list(tmp_path: Path) -> None:
    """No archive: test = testing_list.txt clips plus cropped silence (the main archive's protocol)."""
    _tiny_v1(tmp_path, None)
    test = [ex for ex in load_examples("speechcommands-v1-12", tmp_path) if ex.split == "test"]
    assert {ex.path.name for ex in test if ex.label != 11} == {"cccc0003_nohash_0.wav"}
    assert Counter(TWELVE_LABELS[ex.label] for ex in test) == {**{w: 1 for w in CORE_WORDS}, UNKNOWN: 20, SILENCE: 1}
    assert len(load_examples("speechcommands-v1", tmp_path)) == 90  # the 30-word task never reads an archive


def test_incomplete_test_archive_is_refused(tmp_path: Path) -> None:
    """An archive without its _silence_ folder is missing data, unless allow_missing."""
    _tiny_v1(tmp_path, "beside")
    shutil.rmtree(tmp_path / "speech_commands_test_set_v0.01" / SILENCE)
    with pytest.raises(DatasetError, match=r"test archive .*speech_commands_test_set_v0\.01 lacks .*_silence_"):
        load_examples("speechcommands-v1-12", tmp_path)
    test = [ex for ex in load_examples("speechcommands-v1-12", tmp_path, allow_missing=True) if ex.split == "test"]
    assert len(test) == 22 and SILENCE not in {TWELVE_LABELS[ex.label] for ex in test}
