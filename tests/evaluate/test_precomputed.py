"""Precomputed features: safe loading, and alignment that refuses when labels disagree."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from audiosep_kit.errors import ArtifactMismatchError, DatasetError
from audiosep_kit.evaluate._precomputed import align_to_examples, load_precomputed
from audiosep_kit.evaluate.tasks._task import Example


def _examples(labels) -> list[Example]:
    return [Example(Path(f"clip{i}.wav"), int(label), "1") for i, label in enumerate(labels)]


def _save(path: Path, features, labels) -> Path:
    torch.save({"features": torch.as_tensor(features), "labels": torch.as_tensor(labels)}, path)
    return path


def test_round_trip_and_alignment(tmp_path):
    labels = np.array([0, 1, 2, 1])
    X = np.arange(8, dtype=np.float32).reshape(4, 2)
    pre = load_precomputed(_save(tmp_path / "f.pt", X, labels))
    assert pre.features.dtype == np.float32 and pre.labels.dtype == np.int64 and len(pre.sha256) == 64
    np.testing.assert_array_equal(align_to_examples(pre, _examples(labels)), X)
    assert pre.describe()["shape"] == [4, 2]


def test_labels_that_disagree_are_refused_with_the_rows(tmp_path):
    pre = load_precomputed(_save(tmp_path / "f.pt", np.zeros((4, 2), np.float32), [0, 1, 2, 1]))
    with pytest.raises(ArtifactMismatchError, match=r"labels disagree .* in 2 of 4 rows \(row 1 \(clip1.wav\)"):
        align_to_examples(pre, _examples([0, 2, 1, 1]))


def test_row_count_mismatch_is_refused(tmp_path):
    pre = load_precomputed(_save(tmp_path / "f.pt", np.zeros((3, 2), np.float32), [0, 1, 2]))
    with pytest.raises(ArtifactMismatchError, match="has 3 rows but the metadata lists 4 examples"):
        align_to_examples(pre, _examples([0, 1, 2, 1]), metadata="the metadata")


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"features": torch.zeros(2, 3)}, "must hold a dict with 'features'"),
        ([torch.zeros(2, 3)], "got list"),
        ({"features": torch.zeros(2, 3), "labels": torch.zeros(3, dtype=torch.long)}, r"got \(2, 3\) and \(3,\)"),
        ({"features": torch.zeros(2, 3), "labels": torch.zeros(2)}, "labels must be integers"),
        ({"features": torch.full((2, 3), float("nan")), "labels": torch.zeros(2, dtype=torch.long)}, "non-finite"),
    ],
)
def test_malformed_files_are_refused(tmp_path, obj, message):
    path = tmp_path / "bad.pt"
    torch.save(obj, path)
    with pytest.raises(ArtifactMismatchError, match=message):
        load_precomputed(path)


class _Payload:
    """An arbitrary pickled object: weights_only loading must refuse to construct it."""


def test_loading_is_weights_only(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"features": _Payload(), "labels": _Payload()}, fh, protocol=2)
    with pytest.raises(ArtifactMismatchError, match="cannot read features file"):
        load_precomputed(path)


def test_missing_file_names_the_flag(tmp_path):
    with pytest.raises(DatasetError, match="check --features"):
        load_precomputed(tmp_path / "nope.pt")


def test_real_esc50_seed_features_align_with_the_official_metadata(esc50_seed_features, shared_data_dir):
    from audiosep_kit.evaluate.tasks import load_metadata

    examples = load_metadata("esc50", shared_data_dir)
    pre = load_precomputed(esc50_seed_features)
    X = align_to_examples(pre, examples)
    assert X.shape == (2000, 384) and len(examples) == 2000
    shuffled = examples[1:] + examples[:1]
    with pytest.raises(ArtifactMismatchError, match="labels disagree"):
        align_to_examples(pre, shuffled)


@pytest.mark.slow  # 5 folds of logreg on 2303 x 384 (~40 s)
def test_seed_librispeech_file_evaluates_through_a_csv_of_its_own_labels(shared_dir, tmp_path):
    """The seed file's labels are speaker ids in an unknown order: a CSV listing one row per feature row,
    label = speaker id, aligns row by row (paths need not exist) and runs the generated folds."""
    from audiosep_kit.evaluate._protocols import EvalOptions
    from audiosep_kit.evaluate._runner import RunConfig, evaluate_precomputed

    path = shared_dir / "seed-features" / "librispeech_devclean_features.pt"
    if not path.is_file():
        pytest.skip(f"seed features not found at {path}: this test reads the ../shared test material")
    labels = torch.load(path, weights_only=True)["labels"].tolist()
    rows = ["path,label", *(f"row{i:05d}.flac,{speaker}" for i, speaker in enumerate(labels))]
    (tmp_path / "devclean.csv").write_text("\n".join(rows) + "\n")
    config = RunConfig(heads=("logreg",), options=EvalOptions())
    evaluation = evaluate_precomputed(path, f"csv:{tmp_path / 'devclean.csv'}", config, out_dir=tmp_path / "out")
    assert evaluation.report["task"]["num_classes"] == 40 and len(evaluation.results) == 5
    assert evaluation.report["heads"]["logreg"]["accuracy_mean"] > 0.5
    assert (tmp_path / "out" / "results.json").is_file()


def test_labels_stored_as_integer_class_names_are_mapped_to_ids():
    from audiosep_kit.evaluate._precomputed import PrecomputedFeatures, labels_as_ids

    pre = PrecomputedFeatures(np.zeros((3, 2), np.float32), np.array([174, 84, 174]), Path("x.pt"), "0")
    assert labels_as_ids(pre, ("84", "174")).labels.tolist() == [1, 0, 1]
    assert labels_as_ids(pre, ("dog", "cat")) is pre  # names that are not integers: labels are ids
    ids = PrecomputedFeatures(pre.features, np.array([1, 0, 1]), pre.path, "0")
    assert labels_as_ids(ids, ("0", "1")) is ids  # names 0..K-1 are the ids themselves
