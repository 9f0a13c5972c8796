"""Embedding map: a deterministic, readable 2-D picture of the features by class, in every run folder."""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.evaluate import _embedding_map as em

MEASURED = {"layer": "center", "pooling": "mean", "weights_sha256": "ab12" * 16, "random_weights": False}
PNG = b"\x89PNG\r\n\x1a\n"


def _blobs(n_per_class: int = 12, n_classes: int = 3, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = rng.normal(size=(y.size, dim)).astype(np.float32)
    X[np.arange(y.size), y % dim] += 10.0
    return X, y


def test_title_names_task_layer_pooling_weights_and_the_random_warning():
    title = em.embedding_title("esc50", MEASURED, "tsne", n_shown=2000, n_total=2000, n_classes=50)
    lines = title.splitlines()
    assert lines[0] == "esc50: t-SNE of the features by class"
    assert lines[1] == "layer center, pooling mean, weights sha256 ab12ab12ab12"
    assert "RANDOM" not in title and lines[2] == "2000 clips; 50 classes, colour = class index (no legend)"
    random = em.embedding_title(
        "icbhi", {**MEASURED, "random_weights": True}, "umap", n_shown=5000, n_total=6898, n_classes=4
    )
    assert random.startswith("icbhi: UMAP") and "RANDOM WEIGHTS: smoke run, not AudioSep features" in random
    assert random.endswith("random subsample of 5000 of 6898 clips (seed 0)")
    unknown = em.embedding_title("esc50", {}, "tsne", n_shown=10, n_total=10, n_classes=2)
    assert "layer unknown, pooling unknown, weights unknown (precomputed features)" in unknown


def test_png_is_written_with_that_title(tmp_path, monkeypatch):
    """The real PNG is written; the title handed to the plot is the one embedding_title makes."""
    X, y = _blobs()
    path = em.write_embedding_map(X, y, ("a", "b", "c"), tmp_path, task="toy", measured=MEASURED, method="tsne")
    assert path == tmp_path / "embedding_tsne.png" and path.read_bytes()[:8] == PNG
    seen = {}
    monkeypatch.setattr(em, "plot_embedding", lambda coords, labels, names, path, title: seen.update(title=title))
    random = {**MEASURED, "random_weights": True}
    em.write_embedding_map(X, y, ("a", "b", "c"), tmp_path, task="toy", measured=random, method="tsne")
    assert seen["title"] == em.embedding_title("toy", random, "tsne", n_shown=36, n_total=36, n_classes=3)


def test_coordinates_are_deterministic_and_keep_classes_apart():
    X, y = _blobs()
    first, second = em.embed_2d(X, "tsne"), em.embed_2d(X, "tsne")
    assert first.shape == (36, 2) and np.array_equal(first, second)
    distances = ((first[:, None, :] - first[None]) ** 2).sum(-1) + np.diag(np.full(len(y), np.inf))
    assert np.mean(y[np.argmin(distances, axis=1)] == y) > 0.9  # each point's map neighbour: its own class


def test_many_classes_and_tiny_inputs(tmp_path):
    """25 classes draw without a legend; below MIN_POINTS clips no map is drawn (None)."""
    X, y = _blobs(n_per_class=2, n_classes=25, dim=30)
    names = [f"class {i}" for i in range(25)]
    path = em.write_embedding_map(X, y, names, tmp_path, task="toy", measured=MEASURED, method="tsne")
    assert path.read_bytes()[:8] == PNG
    assert em.write_embedding_map(X[:4], y[:4], names, tmp_path / "x", task="t", measured={}, method="tsne") is None


def test_subsample_is_seeded_sorted_and_only_above_the_limit():
    assert np.array_equal(em.subsample(10, max_points=10), np.arange(10))
    rows = em.subsample(12_000)
    assert rows.size == em.MAX_POINTS and np.all(np.diff(rows) > 0) and rows[-1] < 12_000
    assert np.array_equal(rows, em.subsample(12_000))


def test_umap_without_umap_learn_is_a_clear_error(monkeypatch):
    """Asked for UMAP without the extra: an error naming the install; ``auto`` means t-SNE then."""
    monkeypatch.setattr(em, "umap_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match=r"needs the optional umap-learn .*audiosep-kit\[umap\]"):
        em.resolve_method("umap")
    assert em.resolve_method("auto") == "tsne"
    with pytest.raises(ConfigError, match=r"`method` must be one of .*got 'pca'"):
        em.resolve_method("pca")


def test_umap_path_when_installed(tmp_path):
    pytest.importorskip("umap", reason="umap-learn (the optional [umap] extra) is not installed")
    X, y = _blobs()
    path = em.write_embedding_map(X, y, ("a", "b", "c"), tmp_path, task="toy", measured=MEASURED, method="umap")
    assert path.name == "embedding_umap.png" and np.array_equal(em.embed_2d(X, "umap"), em.embed_2d(X, "umap"))
