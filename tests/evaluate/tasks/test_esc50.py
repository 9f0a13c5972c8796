"""ESC-50 / ESC-10 reader: csv order, labels, folds, groups, completeness, and seed-feature alignment."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks import TASKS, load_examples, load_metadata
from audiosep_kit.evaluate.tasks._esc50 import ESC10_TARGETS, ESC50_LABELS


def _csv_rows(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / "esc50" / "meta" / "esc50.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_label_names_follow_target_order(shared_data: Path) -> None:
    """Label i of esc50 is the category whose target is i in the official csv; esc10 keeps target order."""
    by_target = {int(row["target"]): row["category"] for row in _csv_rows(shared_data)}
    assert TASKS["esc50"].label_names == tuple(by_target[i] for i in range(50))
    esc10 = sorted({int(row["target"]) for row in _csv_rows(shared_data) if row["esc10"] == "True"})
    assert list(ESC10_TARGETS) == esc10
    assert TASKS["esc10"].label_names == tuple(ESC50_LABELS[t] for t in esc10)


def test_sample_reads_with_allow_missing(shared_data: Path) -> None:
    """On the cut-down sample (allow_missing=True, since ~43 of 2000 wavs exist) every present clip loads."""
    examples = load_examples("esc50", shared_data, allow_missing=True)
    present = sorted(path.name for path in (shared_data / "esc50" / "audio").glob("*.wav"))
    assert sorted(example.path.name for example in examples) == present
    assert all(0 <= example.label < 50 for example in examples)
    assert {example.split for example in examples} <= set(TASKS["esc50"].splits)
    assert {example.split for example in examples} == {"2", "4", "5"}


def test_known_clip_label_fold_and_group(shared_data: Path) -> None:
    """4-164021-A-1.wav is rooster (target 1), fold 4, freesound clip 164021, in esc50 and esc10."""
    for name in ("esc50", "esc10"):
        task = TASKS[name]
        examples = {ex.path.name: ex for ex in load_examples(name, shared_data, allow_missing=True)}
        rooster = examples["4-164021-A-1.wav"]
        assert task.label_names[rooster.label] == "rooster" and rooster.label == 1
        assert rooster.split == "4" and rooster.group == "164021"
        assert rooster.start_s is None and rooster.end_s is None


def test_order_is_csv_row_order(shared_data: Path) -> None:
    """Examples follow meta/esc50.csv row order, restricted to the files present."""
    rows = [row["filename"] for row in _csv_rows(shared_data)]
    examples = load_examples("esc50", shared_data, allow_missing=True)
    positions = [rows.index(example.path.name) for example in examples]
    assert positions == sorted(positions)


def test_missing_audio_is_refused_by_default(shared_data: Path) -> None:
    """Without allow_missing the sample is refused: how many are missing, which, and the way out."""
    with pytest.raises(DatasetError, match=r"1957 of 2000 audio files listed in .*esc50\.csv are missing, "
                       r"e\.g\. audio/1-100032-A-0\.wav.*allow_missing=True"):  # fmt: skip
        load_examples("esc50", shared_data)


def test_metadata_has_all_rows_with_target_labels(shared_data: Path) -> None:
    """load_metadata gives all 2000 rows in csv order, labels = target, folds = fold, groups = src_file."""
    rows = _csv_rows(shared_data)
    examples = load_metadata("esc50", shared_data)
    assert len(examples) == 2000
    assert [ex.path.name for ex in examples] == [row["filename"] for row in rows]
    assert [ex.label for ex in examples] == [int(row["target"]) for row in rows]
    assert [ex.split for ex in examples] == [row["fold"] for row in rows]
    assert [ex.group for ex in examples] == [row["src_file"] for row in rows]


def test_esc10_metadata_is_the_subset_reindexed(shared_data: Path) -> None:
    """ESC-10 is the 400 esc10==True rows with labels 0..9 in original-target order, 40 per class."""
    examples = load_metadata("esc10", shared_data)
    assert len(examples) == 400
    assert sorted({ex.label for ex in examples}) == list(range(10))
    assert all(sum(ex.label == k for ex in examples) == 40 for k in range(10))


def test_metadata_aligns_with_seed_features(shared_data: Path, seed_features: Path) -> None:
    """The seed project's 2000 ESC-50 feature rows carry exactly load_metadata's labels, row for row."""
    torch = pytest.importorskip("torch")
    saved = torch.load(seed_features / "esc50_features_audiosep.pt", weights_only=True)
    examples = load_metadata("esc50", shared_data)
    assert saved["labels"].tolist() == [ex.label for ex in examples]


def test_partial_copy_names_the_missing_files(shared_data: Path, tmp_path: Path) -> None:
    """A copy with the csv and a single clip: the error counts 1999 missing and names the folder."""
    folder = tmp_path / "esc50"
    (folder / "meta").mkdir(parents=True)
    (folder / "audio").mkdir()
    shutil.copy(shared_data / "esc50" / "meta" / "esc50.csv", folder / "meta")
    shutil.copy(shared_data / "esc50" / "audio" / "4-164021-A-1.wav", folder / "audio")
    with pytest.raises(DatasetError, match=rf"1999 of 2000 audio files .*dataset folder {folder}"):
        load_examples("esc50", tmp_path)
    assert len(load_examples("esc50", tmp_path, allow_missing=True)) == 1


def test_inconsistent_csv_is_refused(tmp_path: Path) -> None:
    """A row whose category disagrees with its target is a DatasetError naming the row."""
    meta = tmp_path / "esc50" / "meta"
    meta.mkdir(parents=True)
    (meta / "esc50.csv").write_text(
        "filename,fold,target,category,esc10,src_file,take\n1-1-A-0.wav,1,0,rooster,True,1,A\n"
    )
    with pytest.raises(DatasetError, match=r"esc50\.csv row 1: target 0 / category 'rooster' do not match"):
        load_metadata("esc50", tmp_path)
