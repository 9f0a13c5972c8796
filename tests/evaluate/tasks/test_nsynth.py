"""NSynth reader: instrument-family labels by NSynth's own numbers, official split folders, completeness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks import TASKS, load_examples


def test_sample_test_split_reads_with_allow_missing(shared_data: Path) -> None:
    """The sample's 40 nsynth-test notes load (allow_missing=True: no train/valid folders), 10 families."""
    examples = load_examples("nsynth", shared_data, allow_missing=True)
    assert len(examples) == 40
    assert {ex.split for ex in examples} == {"test"}
    assert len({ex.label for ex in examples}) == 10
    assert all(0 <= ex.label < 11 for ex in examples)
    assert [ex.path.stem for ex in examples] == sorted(ex.path.stem for ex in examples)


def test_labels_are_instrument_family_numbers(shared_data: Path) -> None:
    """Each label equals examples.json's instrument_family and names its instrument_family_str."""
    notes = json.loads((shared_data / "nsynth" / "nsynth-test" / "examples.json").read_text())
    names = TASKS["nsynth"].label_names
    for ex in load_examples("nsynth", shared_data, allow_missing=True):
        fields = notes[ex.path.stem]
        assert ex.label == fields["instrument_family"]
        assert names[ex.label] == fields["instrument_family_str"]
        assert ex.group == fields["instrument_str"]
    assert names[9] == "synth_lead" and names[10] == "vocal"


def test_known_note(shared_data: Path) -> None:
    """keyboard_electronic_002-060-050 is family 4 (keyboard), instrument keyboard_electronic_002."""
    examples = {ex.path.stem: ex for ex in load_examples("nsynth", shared_data, allow_missing=True)}
    note = examples["keyboard_electronic_002-060-050"]
    assert (note.label, note.split, note.group) == (4, "test", "keyboard_electronic_002")


def test_missing_split_folders_are_refused(shared_data: Path) -> None:
    """By default the absent nsynth-train and nsynth-valid are a DatasetError naming them."""
    with pytest.raises(DatasetError, match=r"2 of 3 official split\(s\) are missing: no .*nsynth-train.*nsynth-valid"):
        load_examples("nsynth", shared_data)


def test_wrong_family_is_refused(tmp_path: Path) -> None:
    """An entry whose family number and name disagree is a DatasetError naming the note."""
    folder = tmp_path / "nsynth" / "nsynth-test"
    folder.mkdir(parents=True)
    entry = {"instrument_family": 3, "instrument_family_str": "bass", "instrument_str": "bass_x_001"}
    (folder / "examples.json").write_text(json.dumps({"bass_x_001-060-100": entry}))
    with pytest.raises(DatasetError, match=r"note 'bass_x_001-060-100' has instrument_family 3 / 'bass'"):
        load_examples("nsynth", tmp_path, allow_missing=True)
