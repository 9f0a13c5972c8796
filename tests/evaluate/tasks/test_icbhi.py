"""ICBHI reader: cycles cut by the annotation lines, labels from the crackle/wheeze numbers, official split."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from audiosep_kit.audio._io import read_audio
from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks import TASKS, load_examples, load_metadata

FOUR = {(0, 0): "normal", (1, 0): "crackle", (0, 1): "wheeze", (1, 1): "both"}


def _annotation_cycles(path: Path) -> list[tuple[float, float, int, int]]:
    """The test's own reading of an annotation file, independent of the reader."""
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [(float(a), float(b), int(c), int(w)) for a, b, c, w in rows]


def test_labels_match_the_annotation_numbers(shared_data: Path) -> None:
    """Every sample cycle's label is the (crackles, wheezes) pair of its annotation line, bounds included."""
    names = TASKS["icbhi"].label_names
    examples = load_examples("icbhi", shared_data, allow_missing=True)
    for wav in sorted((shared_data / "icbhi2017" / "ICBHI_final_database").glob("*.wav")):
        ours = [ex for ex in examples if ex.path == wav]
        theirs = _annotation_cycles(wav.with_suffix(".txt"))
        assert [(ex.start_s, ex.end_s) for ex in ours] == [(a, b) for a, b, _, _ in theirs]
        assert [names[ex.label] for ex in ours] == [FOUR[(c, w)] for _, _, c, w in theirs]


def test_known_cycles(shared_data: Path) -> None:
    """103_2b2 0.364-3.25 s is a wheeze (0 1), 104_1b1_Ll 8.8287-10.396 s a crackle (1 0), patients as groups."""
    by_key = {(ex.path.stem, ex.start_s): ex for ex in load_examples("icbhi", shared_data, allow_missing=True)}
    wheeze = by_key[("103_2b2_Ar_mc_LittC2SE", 0.364)]
    assert (wheeze.end_s, wheeze.label, wheeze.split, wheeze.group) == (3.25, 2, "train", "103")
    crackle = by_key[("104_1b1_Ll_sc_Litt3200", 8.8287)]
    assert (crackle.end_s, crackle.label, crackle.split, crackle.group) == (10.396, 1, "test", "104")


def test_several_classes_occur(shared_data: Path) -> None:
    """Unlike the seed parser (all 0), the sample gives normal, crackle and wheeze cycles, both splits."""
    examples = load_examples("icbhi", shared_data, allow_missing=True)
    assert len(examples) == 57
    assert Counter(ex.label for ex in examples) == {0: 52, 2: 4, 1: 1}
    assert {ex.split for ex in examples} == {"train", "test"}
    two = load_examples("icbhi-2class", shared_data, allow_missing=True)
    assert [ex.label for ex in two] == [int(ex.label != 0) for ex in examples]


def test_metadata_matches_the_challenge_counts(shared_data: Path) -> None:
    """All 920 annotations give the challenge's 6898 cycles: 4142 train / 2756 test, 3642/1864/886/506."""
    examples = load_metadata("icbhi", shared_data)
    assert Counter(ex.split for ex in examples) == {"train": 4142, "test": 2756}
    assert Counter(ex.label for ex in examples) == {0: 3642, 1: 1864, 2: 886, 3: 506}
    train_patients = {ex.group for ex in examples if ex.split == "train"}
    test_patients = {ex.group for ex in examples if ex.split == "test"}
    assert len(train_patients | test_patients) == 126


def test_split_file_erratum_maps_to_the_existing_recording(shared_data: Path) -> None:
    """The split file's 226_1b1_Pl_sc_Meditron is read as the database's 226_1b1_Pl_sc_LittC2SE (train)."""
    examples = load_metadata("icbhi", shared_data)
    stems = {ex.path.stem for ex in examples}
    assert "226_1b1_Pl_sc_LittC2SE" in stems and "226_1b1_Pl_sc_Meditron" not in stems
    assert {ex.split for ex in examples if ex.path.stem == "226_1b1_Pl_sc_LittC2SE"} == {"train"}


def test_cycle_segment_decodes_to_its_length(shared_data: Path) -> None:
    """A cycle's start_s/end_s cut that span of the recording (read_audio returns it at 32 kHz)."""
    example = load_examples("icbhi", shared_data, allow_missing=True)[0]
    clip = read_audio(example.path, start_s=example.start_s, end_s=example.end_s)
    assert clip.waveform.shape[0] == pytest.approx((example.end_s - example.start_s) * 32_000, abs=64)


def test_missing_audio_is_refused_by_default(shared_data: Path) -> None:
    """The sample (7 of 920 recordings) is refused without allow_missing, naming the missing wavs."""
    with pytest.raises(DatasetError, match=r"913 of 920 audio files listed in .*ICBHI_challenge_train_test"):
        load_examples("icbhi", shared_data)


def _mini_copy(shared_data: Path, root: Path, recording: str) -> Path:
    folder = root / "icbhi2017"
    (folder / "ICBHI_final_database").mkdir(parents=True)
    source = shared_data / "icbhi2017" / "ICBHI_final_database"
    shutil.copy(source / f"{recording}.wav", folder / "ICBHI_final_database")
    (folder / "ICBHI_challenge_train_test.txt").write_text(f"{recording}\ttest\r\n")
    return folder


def test_missing_annotation_names_where_it_was_looked_for(shared_data: Path, tmp_path: Path) -> None:
    """A recording without its .txt is missing data; the error names both annotation folders."""
    _mini_copy(shared_data, tmp_path, "101_1b1_Al_sc_Meditron")
    with pytest.raises(DatasetError, match=r"1 recording\(s\) .*no annotation \.txt in .*all_920_annotations"):
        load_examples("icbhi", tmp_path)


def test_annotation_in_all_920_folder_and_both_class(shared_data: Path, tmp_path: Path) -> None:
    """Annotations are found in all_920_annotations/ too; a (1, 1) line is 'both' (2-class: abnormal)."""
    folder = _mini_copy(shared_data, tmp_path, "101_1b1_Al_sc_Meditron")
    (folder / "all_920_annotations").mkdir()
    (folder / "all_920_annotations" / "101_1b1_Al_sc_Meditron.txt").write_text("0.5\t2.0\t1\t1\n2.0\t3.0\t0\t0\n")
    examples = load_examples("icbhi", tmp_path)
    assert [(ex.start_s, ex.end_s, ex.label, ex.group) for ex in examples] == [
        (0.5, 2.0, 3, "101"),
        (2.0, 3.0, 0, "101"),
    ]
    assert [ex.label for ex in load_examples("icbhi-2class", tmp_path)] == [1, 0]


def test_malformed_annotation_line_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """A flag other than 0/1 is a DatasetError naming the file and line."""
    folder = _mini_copy(shared_data, tmp_path, "101_1b1_Al_sc_Meditron")
    (folder / "ICBHI_final_database" / "101_1b1_Al_sc_Meditron.txt").write_text("0.5\t2.0\t0\t0\n2.0\t3.0\t2\t0\n")
    with pytest.raises(DatasetError, match=r"101_1b1_Al_sc_Meditron\.txt line 2: need 0 <= start < end"):
        load_examples("icbhi", tmp_path)
