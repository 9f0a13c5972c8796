"""A 2-D map of a task's features coloured by class: does the encoder already separate the classes?

Every run folder gets one (``embedding_tsne.png``, or ``embedding_umap.png``) beside the confusion
matrices, because a score says *how well* heads did and the map shows *why*: tight class islands,
one undivided cloud, or clusters that follow something else (recording, speaker). Why each choice:

* **All the task's examples** (train, valid and test; no head, no selection), standardised per
  dimension first so that a few large-valued dimensions do not decide every distance.
* **t-SNE** (scikit-learn) by default: PCA initialisation and ``random_state=0``, so one set of
  features always gives the same picture; perplexity 30, clipped to ``(N - 1) / 3`` for small N.
  **UMAP** (``n_neighbors`` 15, clipped likewise, ``random_state=0``) when the optional
  ``umap-learn`` extra is installed (``pip install audiosep-kit[umap]``) and ``method="auto"``.
* Above :data:`MAX_POINTS` clips a random subsample (seed 0, the same rows every time) is shown,
  and the title says so: t-SNE time grows faster than N.
* One BLAS / OpenMP thread: on a shared 2-core machine that is faster than two, as for the heads.
* The title names the task, the method, the layer, pooling and the weights (SHA-256 prefix), and
  says RANDOM WEIGHTS on the image itself when they were, since PNGs travel without summary.md. Up to
  :data:`LEGEND_UP_TO` classes a legend names them; above, the title states the class count.

About 10-20 s for ESC-50's 2000 x 384 on one free core; ``RunConfig(embedding_map=False)``
(``audiosep-eval --no-embedding-map``) skips it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

from audiosep_kit._validation import check_choice
from audiosep_kit.errors import BackendUnavailableError
from audiosep_kit.evaluate._confusion import RANDOM_WEIGHTS_LINE
from audiosep_kit.evaluate._heads import _threads

_log = logging.getLogger(__name__)

#: ``auto``: UMAP when ``umap-learn`` is installed, else t-SNE.
EMBEDDING_METHODS = ("auto", "tsne", "umap")
#: Most clips drawn; above this a seeded random subsample of this many is shown.
MAX_POINTS = 5000
#: Most classes that get a legend (and a qualitative palette).
LEGEND_UP_TO = 20
#: Fewest clips worth a map (t-SNE and UMAP need a handful of neighbours).
MIN_POINTS = 5
SEED = 0
_PERPLEXITY = 30.0
_NEIGHBOURS = 15
_TITLES = {"tsne": "t-SNE", "umap": "UMAP"}


def umap_available() -> bool:
    """Whether the optional ``umap-learn`` package is importable (it is never required)."""
    return importlib.util.find_spec("umap") is not None


def resolve_method(method: str) -> str:
    """``tsne`` or ``umap``: ``auto`` picks UMAP when installed; ``umap`` without it is an error."""
    check_choice("method", method, EMBEDDING_METHODS)
    if method == "auto":
        return "umap" if umap_available() else "tsne"
    if method == "umap" and not umap_available():
        raise BackendUnavailableError(
            "the UMAP embedding map needs the optional umap-learn package; it is not installed. "
            "Install it (pip install 'audiosep-kit[umap]') or use method='tsne' / 'auto'."
        )
    return method


def subsample(n_rows: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted row indices to draw: all ``n_rows``, or ``max_points`` of them chosen with seed 0."""
    if n_rows <= max_points:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(SEED).choice(n_rows, size=max_points, replace=False))


def embed_2d(X: np.ndarray, method: str = "tsne") -> np.ndarray:
    """(N, D) features -> (N, 2) map coordinates (standardised first; deterministic for given X)."""
    Z = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
    n = Z.shape[0]
    with _threads(1):
        if method == "umap":
            import umap  # the optional extra; resolve_method checked that it is there

            reducer = umap.UMAP(n_components=2, n_neighbors=int(min(_NEIGHBOURS, n - 1)), random_state=SEED)
            return np.asarray(reducer.fit_transform(Z), dtype=np.float64)
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, perplexity=min(_PERPLEXITY, (n - 1) / 3), init="pca", random_state=SEED)
        return np.asarray(tsne.fit_transform(Z), dtype=np.float64)


def embedding_title(task: str, measured: dict, method: str, *, n_shown: int, n_total: int, n_classes: int) -> str:
    """Task, method, encoder options and weights, warnings, and what is drawn, one line each."""
    sha = measured.get("weights_sha256")
    weights = f"weights sha256 {sha[:12]}" if sha else "weights unknown (precomputed features)"
    layer, pooling = measured.get("layer") or "unknown", measured.get("pooling") or "unknown"
    lines = [f"{task}: {_TITLES[method]} of the features by class", f"layer {layer}, pooling {pooling}, {weights}"]
    if measured.get("random_weights"):
        lines.append(RANDOM_WEIGHTS_LINE)
    drawn = f"{n_total} clips" if n_shown == n_total else f"random subsample of {n_shown} of {n_total} clips (seed 0)"
    legend = "" if n_classes <= LEGEND_UP_TO else f"; {n_classes} classes, colour = class index (no legend)"
    lines.append(f"{drawn}{legend}")
    return "\n".join(lines)


def plot_embedding(coords: np.ndarray, labels: np.ndarray, label_names: Sequence[str], path: Path, title: str) -> None:
    """Write the (M, 2) map as a PNG, one colour per class (legend up to LEGEND_UP_TO classes)."""
    # An Agg canvas on a bare Figure: no pyplot, so no global backend switch and no figure registry.
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = np.asarray(labels)
    n_classes = len(label_names)
    legend = n_classes <= LEGEND_UP_TO
    fig = Figure(figsize=(10 if legend else 8, 7.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    size = float(np.clip(8000 / max(len(labels), 1), 4, 25))
    if legend:
        palette = colormaps["tab10" if n_classes <= 10 else "tab20"]
        for index in np.unique(labels):
            rows = labels == index
            name = f"{label_names[index]} ({int(rows.sum())})"
            ax.scatter(
                coords[rows, 0], coords[rows, 1], s=size, color=palette(int(index)), alpha=0.8, linewidths=0, label=name
            )
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, markerscale=max(1.0, 16 / size))
    else:
        ax.scatter(
            coords[:, 0],
            coords[:, 1],
            s=size,
            c=labels,
            cmap="turbo",
            vmin=0,
            vmax=n_classes - 1,
            alpha=0.8,
            linewidths=0,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    warn = RANDOM_WEIGHTS_LINE in title
    ax.set_title(title, fontsize=10, color="darkred" if warn else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_embedding_map(
    X: np.ndarray,
    labels: Sequence[int],
    label_names: Sequence[str],
    out_dir: Path,
    *,
    task: str,
    measured: dict,
    method: str = "auto",
) -> Path | None:
    """Draw ``embedding_<method>.png`` in ``out_dir`` and return its path (None below MIN_POINTS clips).

    ``X`` is (N, D), ``labels`` the (N,) class ids; ``measured`` is the report's ``measured`` block.
    """
    X, y = np.asarray(X), np.asarray(labels, dtype=np.int64)
    chosen = resolve_method(method)
    if X.ndim != 2 or X.shape[0] < MIN_POINTS or X.shape[1] < 2:
        _log.info("embedding map skipped: features of shape %s (need >= %d rows, >= 2 dims)", X.shape, MIN_POINTS)
        return None
    rows = subsample(X.shape[0])
    _log.info("embedding map: %s of %d x %d features", _TITLES[chosen], rows.size, X.shape[1])
    coords = embed_2d(X[rows], chosen)
    title = embedding_title(task, measured, chosen, n_shown=rows.size, n_total=X.shape[0], n_classes=len(label_names))
    path = Path(out_dir) / f"embedding_{chosen}.png"
    plot_embedding(coords, y[rows], label_names, path, title)
    return path
