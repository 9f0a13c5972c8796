"""check_examples: partial data is refused (or noted) from labels and splits alone, before extraction."""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate._preflight import check_examples
from audiosep_kit.evaluate._protocols import PROTOCOLS, resolve_protocol
from audiosep_kit.evaluate._runner import ExtractionConfig, RunConfig, evaluate_extracted
from audiosep_kit.evaluate.tasks import get_task, load_examples


def test_complete_fold_data_passes_without_notes(toy, fold_task):
    _, y = toy.blobs(10)
    assert check_examples(fold_task, toy.fold_examples(y), PROTOCOLS["evar"]) == []


def test_missing_folds_leave_a_note_when_three_remain(toy, fold_task):
    _, y = toy.blobs(10)
    examples = [e for e in toy.fold_examples(y) if e.split not in ("4", "5")]
    notes = check_examples(fold_task, examples, PROTOCOLS["evar"])
    assert len(notes) == 1 and "folds 4, 5 of toy-folds have no examples" in notes[0]


def test_fewer_than_three_folds_are_refused_with_what_is_present(toy, fold_task):
    _, y = toy.blobs(10)
    examples = [e for e in toy.fold_examples(y) if e.split in ("1", "2")]
    with pytest.raises(DatasetError, match=r"needs examples in at least 3 folds.*Present: fold 1: 6 examples.*"
                       r"no examples in fold\(s\) 3, 4, 5.*--allow-missing was given"):  # fmt: skip
        check_examples(fold_task, examples, PROTOCOLS["evar"], allow_missing=True)


def test_a_training_set_of_one_class_is_refused(toy, split_task):
    _, y = toy.blobs(10)
    examples = [e for e in toy.split_examples(y) if e.split != "train" or e.label == 0]
    with pytest.raises(DatasetError, match=r"training rows hold 1 class\(es\) \['a'\]"):
        check_examples(split_task, examples, PROTOCOLS["split"])


def test_one_training_group_is_carved_without_groups_and_noted(toy, carve_task):
    """One group (the ICBHI sample's single training patient) cannot be split by group: validation is
    carved from the rows instead, and the report's notes say that it shares the group with training."""
    _, y = toy.blobs(10)
    examples = toy.split_examples(y, with_valid=False, n_groups=1)
    (note,) = check_examples(carve_task, examples, PROTOCOLS["split"])
    assert "official split: the training rows come from one toy-carve recording group" in note
    assert "carved without groups" in note


def test_a_training_set_too_small_to_carve_is_refused(toy, carve_task):
    _, y = toy.blobs(10)
    examples = toy.split_examples(y, with_valid=False)
    train = [e for e in examples if e.split == "train"]
    kept = [next(e for e in train if e.label == c) for c in range(3)] + [e for e in examples if e.split == "test"]
    with pytest.raises(DatasetError, match=r"cannot carve a validation set from 3 training rows"):
        check_examples(carve_task, kept, PROTOCOLS["split"])


def test_no_examples_are_refused(fold_task):
    with pytest.raises(DatasetError, match=r"there are no examples"):
        check_examples(fold_task, [], PROTOCOLS["evar"])


def _no_extractor(_):
    raise AssertionError("the extractor must not be built for data the protocol cannot use")


def test_partial_icbhi_runs_with_a_note_on_its_one_training_patient(shared_data_dir):
    """The shared ICBHI sample has one training patient: this was a scikit-learn traceback after
    extraction, then a refusal; now validation is carved without groups and the report says so."""
    task = get_task("icbhi")
    examples = load_examples(task, shared_data_dir, allow_missing=True)
    assert len({e.group for e in examples if e.split == "train"}) == 1
    notes = check_examples(task, examples, resolve_protocol("official", task), allow_missing=True)
    assert any("carved without groups" in note for note in notes), notes


def test_esc50_with_only_some_folds_is_refused_before_extraction(shared_data_dir, tmp_path):
    """The 43-clip sample: hear's whole-fold training sets hold one class (refused before extraction);
    evar carves validation from every other fold, so it can run, with the reduced-evaluation note."""
    examples = load_examples("esc50", shared_data_dir, allow_missing=True)
    present = sorted({e.split for e in examples})
    assert len(present) < 5 and np.unique([e.label for e in examples]).size > 1
    with pytest.raises(DatasetError, match=r"esc50: the hear protocol cannot run .*no examples in fold\(s\)"):
        evaluate_extracted(
            "esc50", ExtractionConfig("random:0"), RunConfig(heads=("logreg",), protocol="hear"),
            data_root=shared_data_dir, allow_missing=True, cache_dir=tmp_path, make_extractor=_no_extractor,
        )  # fmt: skip
    (note,) = check_examples(get_task("esc50"), examples, PROTOCOLS["evar"], allow_missing=True)
    assert note.startswith("reduced evaluation: folds 1, 3 of esc50 have no examples")
