"""Fixtures of the evaluation tests: small synthetic feature sets, toy tasks, and the real seed features.

Synthetic sets are tiny (hundreds of rows, a handful of dimensions) so every protocol test runs in
seconds on two shared cores; the real ESC-50 seed features come from ``../shared`` and skip without it.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from audiosep_kit.evaluate._protocols import EvalOptions
from audiosep_kit.evaluate.tasks._task import Example, Task

#: Fast training options for synthetic data.
FAST = EvalOptions(max_epochs=30, patience=10, batch_size=16)


def blobs(n_per_class: int = 40, n_classes: int = 3, dim: int = 6, shift: float = 2.0, seed: int = 0):
    """Gaussian blobs: class c has mean ``shift`` on dimension c (mod dim), unit noise elsewhere."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = rng.normal(size=(y.size, dim)).astype(np.float32)
    X[np.arange(y.size), y % dim] += shift
    return X, y


def fold_examples(y: np.ndarray, n_folds: int = 5, groups_per_fold: int = 4) -> list[Example]:
    """Examples assigned to folds round-robin within each class (stratified, deterministic)."""
    out = []
    for i, label in enumerate(y):
        rank = int((y[:i] == label).sum())
        fold = rank % n_folds + 1
        out.append(Example(Path(f"clip{i}.wav"), int(label), str(fold), group=f"g{fold}-{rank % groups_per_fold}"))
    return out


def split_examples(y: np.ndarray, with_valid: bool = True, n_groups: int = 30) -> list[Example]:
    """Examples in train/valid/test (60/20/20 by rank within class); groups are 'speakers'."""
    names = ("train", "train", "train", "valid", "test") if with_valid else ("train",) * 4 + ("test",)
    out = []
    for i, label in enumerate(y):
        rank = int((y[:i] == label).sum())
        out.append(Example(Path(f"clip{i}.wav"), int(label), names[rank % 5], group=f"spk{rank % n_groups}"))
    return out


@pytest.fixture
def fold_task() -> Task:
    return Task(name="toy-folds", label_names=("a", "b", "c"), protocol="folds", splits=("1", "2", "3", "4", "5"))


@pytest.fixture
def split_task() -> Task:
    return Task(name="toy-split", label_names=("a", "b", "c"), protocol="split", splits=("train", "valid", "test"))


@pytest.fixture
def carve_task() -> Task:
    return Task(name="toy-carve", label_names=("a", "b", "c"), protocol="split", splits=("train", "test"))


@pytest.fixture
def fast_options() -> EvalOptions:
    return FAST


def relabel(examples: list[Example], rows: np.ndarray, labels: np.ndarray) -> list[Example]:
    """A copy of ``examples`` with the labels of ``rows`` replaced."""
    out = list(examples)
    for row, label in zip(rows, labels, strict=False):
        out[row] = replace(out[row], label=int(label))
    return out


def write_esc50_root(root: Path, n_per_fold_class: int = 1, targets: range = range(50)) -> Path:
    """A data root holding ``esc50/meta/esc50.csv`` in the official columns (no audio: metadata only)."""
    from audiosep_kit.evaluate.tasks._esc50 import ESC50_LABELS

    meta = root / "esc50" / "meta"
    meta.mkdir(parents=True)
    with open(meta / "esc50.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for fold in range(1, 6):
            for target in targets:
                for k in range(n_per_fold_class):
                    src = f"{fold}{target:02d}{k}"
                    name = f"{fold}-{src}-A-{target}.wav"
                    writer.writerow([name, fold, target, ESC50_LABELS[target], False, src, "A"])
    return root


@pytest.fixture
def toy() -> SimpleNamespace:
    """The synthetic-data helpers: blobs, fold_examples, split_examples, relabel, write_esc50_root."""
    return SimpleNamespace(
        blobs=blobs,
        fold_examples=fold_examples,
        split_examples=split_examples,
        relabel=relabel,
        write_esc50_root=write_esc50_root,
    )


@pytest.fixture
def esc50_root(tmp_path: Path) -> Path:
    """Synthetic ESC-50 metadata (250 rows: 50 classes x 5 folds) under ``tmp_path/data``."""
    return write_esc50_root(tmp_path / "data")


@pytest.fixture(scope="session")
def esc50_seed_features(shared_dir: Path) -> Path:
    """The seed project's real ESC-50 features (2000 x 384, esc50.csv row order)."""
    path = shared_dir / "seed-features" / "esc50_features_audiosep.pt"
    if not path.is_file():
        pytest.skip(f"seed features not found at {path}: this test reads the ../shared test material")
    return path
