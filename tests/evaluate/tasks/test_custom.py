"""csv:PATH and folder:DIR tasks: the format, the label ids, the splits and folds, and every refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate.tasks import get_task, load_examples, load_metadata, resolve_task, run_name


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(800, dtype=np.float32), 16_000)
    return path


def _rows(n_per_class: int = 6, classes=("dog", "cat", "bird"), extra: str = "") -> list[str]:
    return [f"clips/{name}{i}.wav,{name}{extra}" for name in classes for i in range(n_per_class)]


def test_csv_without_split_gets_five_stratified_folds_and_sorted_label_ids(tmp_path):
    csv_path = _csv(tmp_path / "d" / "labels.csv", "path,label", _rows())
    task = get_task(f"csv:{csv_path}")
    assert task.label_names == ("bird", "cat", "dog") and task.protocol == "folds"
    assert task.splits == ("1", "2", "3", "4", "5") and task.name == f"csv:{csv_path.resolve()}"
    examples = load_metadata(task)
    assert examples[0].path == tmp_path / "d" / "clips" / "dog0.wav" and examples[0].label == 2
    assert {e.split for e in examples} == set(task.splits)
    assert [e.split for e in load_metadata(f"csv:{csv_path}")] == [e.split for e in examples]  # deterministic


def test_integer_label_names_sort_numerically(tmp_path):
    rows = [f"a{i}.wav,{spk}" for i, spk in enumerate(["10", "9", "100"] * 5)]
    assert get_task(f"csv:{_csv(tmp_path / 'l.csv', 'path,label', rows)}").label_names == ("9", "10", "100")


def test_groups_never_straddle_generated_folds(tmp_path):
    rows = [f"{r},rec{i // 2}" for i, r in enumerate(_rows(10))]
    examples = load_metadata(f"csv:{_csv(tmp_path / 'l.csv', 'path,label,group', rows)}")
    folds_of_group: dict[str, set[str]] = {}
    for e in examples:
        folds_of_group.setdefault(str(e.group), set()).add(e.split)
    assert all(len(folds) == 1 for folds in folds_of_group.values())


def test_split_column_gives_a_split_task_and_valid_is_optional(tmp_path):
    rows = [f"{r},{'test' if i % 3 == 0 else 'train'}" for i, r in enumerate(_rows())]
    task = get_task(f"csv:{_csv(tmp_path / 'l.csv', 'path,label,split', rows)}")
    assert task.protocol == "split" and task.splits == ("train", "test")


def test_fold_column_gives_a_fold_task(tmp_path):
    rows = [f"{r},{i % 4 + 1}" for i, r in enumerate(_rows())]
    task = get_task(f"csv:{_csv(tmp_path / 'l.csv', 'path,label,fold', rows)}")
    assert task.protocol == "folds" and task.splits == ("1", "2", "3", "4")


def test_missing_audio_is_refused_unless_allowed(tmp_path):
    csv_path = _csv(tmp_path / "labels.csv", "path,label", _rows())
    _wav(tmp_path / "clips" / "dog0.wav")
    with pytest.raises(DatasetError, match=r"17 of 18 audio files listed in csv:.* are missing"):
        load_examples(f"csv:{csv_path}")
    kept = load_examples(f"csv:{csv_path}", allow_missing=True)
    assert [e.path.name for e in kept] == ["dog0.wav"]


@pytest.mark.parametrize(
    "header, rows, message",
    [
        ("file,label", ["a.wav,dog"], r"expected the columns path,label .* missing \['path'\]"),
        ("path,label", ["a.wav,dog", "b.wav,"], r"line 3: empty label for 'b.wav'"),
        ("path,label", ["a.wav,dog", "b.wav,dog"], r"needs at least 2 classes; got \['dog'\]"),
        ("path,label,split", ["a.wav,dog,train", "b.wav,cat,train"], r"has no test rows"),
        ("path,label,split", ["a.wav,dog,test", "b.wav,cat,train"], r"class\(es\) cat have no test rows"),
        ("path,label,split", ["a.wav,dog,dev"], r"split must be one of \('train', 'valid', 'test'\); got 'dev'"),
        ("path,label,split,fold", ["a.wav,dog,test,1"], r"both a split and a fold column"),
        (
            "path,label",
            ["a.wav,dog", "b.wav,cat"],
            r"5 generated folds need at least 5 files per class; too few: cat \(1\)",
        ),
    ],
)
def test_malformed_csv_is_refused_with_the_reason(tmp_path, header, rows, message):
    with pytest.raises(DatasetError, match=message):
        get_task(f"csv:{_csv(tmp_path / 'l.csv', header, rows)}")


def test_unreadable_csv_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match=r"cannot read the labels CSV"):
        get_task(f"csv:{tmp_path / 'absent.csv'}")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DatasetError, match=r"cannot read the labels CSV|expected the columns"):
        get_task(f"csv:{tmp_path / 'bin.csv'}")


def test_folder_task_reads_one_sub_folder_per_class(tmp_path):
    for name in ("dog", "cat"):
        for i in range(5):
            _wav(tmp_path / "data" / name / "sub" / f"{i}.wav")
    (tmp_path / "data" / "README.txt").write_text("not audio")
    task = resolve_task(f"folder:{tmp_path / 'data'}")
    examples = load_examples(task)
    assert task.label_names == ("cat", "dog") and task.protocol == "folds" and len(examples) == 10
    assert examples[0].path == tmp_path / "data" / "cat" / "sub" / "0.wav" and examples[0].label == 0


def test_folder_that_is_absent_is_refused(tmp_path):
    with pytest.raises(DatasetError, match=r"no such folder"):
        get_task(f"folder:{tmp_path / 'nope'}")


@pytest.mark.parametrize(
    "name, expected",
    [("csv:/a/b.csv", "csv-b"), ("folder:/x/my dogs/", "folder-my-dogs"), ("esc50", "esc50")],
)
def test_run_names_are_file_system_safe(name, expected):
    assert run_name(name) == expected
