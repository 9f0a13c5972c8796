"""evaluate_sweep: a grid of points from one pass per FiLM mode, a run folder each, a summary and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.errors import ConfigError
from audiosep_kit.evaluate import (
    ExtractionConfig,
    RunConfig,
    SweepAxes,
    SweepPoint,
    evaluate_extracted,
    evaluate_sweep,
    plot_sweep,
)
from audiosep_kit.evaluate._protocols import EvalOptions

FAST = EvalOptions(max_epochs=20, patience=5, batch_size=32)
_CLASSES = {"bird": 3000.0, "dog": 300.0, "hum": 1200.0}


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    """3 classes x 6 clips of 0.5 s (a tone per class plus noise) and labels.csv (a csv: task)."""
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 32_000
    rows = ["path,label"]
    for name, freq in _CLASSES.items():
        (root / name).mkdir()
        for i in range(6):
            wave = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.02 * i) * t) + 0.05 * rng.normal(size=t.size)
            sf.write(root / name / f"{i}.wav", wave.astype(np.float32), 32_000)
            rows.append(f"{name}/{i}.wav,{name}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layers": ("block9",)}, r"`sweep layer` must be one of .*got 'block9'"),
        ({"poolings": ("frames",)}, r"`sweep pooling` must be one of \{'mean', 'meanstd', 'max'\}; got 'frames'"),
        ({"films": ()}, r"sweep axis 'film' needs distinct values"),
        ({"layers": ("block1", "block1")}, r"sweep axis 'layer' needs distinct values"),
    ],
)
def test_axes_are_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SweepAxes(**kwargs)


def test_axes_keep_layers_in_network_order():
    axes = SweepAxes(films=("zero", "none"), layers=("center", "block2", "block1"), poolings=("max", "mean"))
    assert axes.layers == ("block1", "block2", "center")
    points = axes.points()
    assert len(points) == 12 and points[0] == SweepPoint("zero", "block1", "max")
    assert points[0].name == "film-zero_block1_max" and axes.taps[:2] == [("block1", "max"), ("block1", "mean")]


@pytest.mark.parametrize(
    "extraction, message",
    [
        (ExtractionConfig(checkpoint="random:0", backend="onnx"), r"eager backend only.*backend='onnx'"),
        (ExtractionConfig(checkpoint="random:0", model_path="x.onnx"), r"model_path='x.onnx' is an artifact"),
    ],
)
def test_a_sweep_on_another_engine_is_refused_before_anything_runs(extraction, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        evaluate_sweep("esc50", extraction, SweepAxes(), RunConfig(heads=("logreg",)), data_root=tmp_path / "none")


def test_film_query_points_need_a_condition(tmp_path):
    with pytest.raises(ConfigError, match="film='query' points need a 512-d condition"):
        evaluate_sweep(
            "esc50", ExtractionConfig(checkpoint="random:0"), SweepAxes(films=("none", "query")),
            RunConfig(heads=("logreg",)), data_root=tmp_path,
        )  # fmt: skip


def _summary(random_weights: bool) -> dict:
    points = []
    for layer, acc in (("block1", 0.4), ("block3", 0.5), ("center", 0.0)):
        for pooling in ("mean", "max"):
            head = {"accuracy_mean": acc, "accuracy_std": 0.1, "val_score_mean": acc, "n_runs": 5}
            points.append({"film": "none", "layer": layer, "pooling": pooling, "heads": {"logreg": head}})
    return {
        "axes": {"film": ["none"], "layer": ["block1", "block3", "center"], "pooling": ["mean", "max"]},
        "points": points, "task": {"name": "toy", "scores": ["accuracy"]}, "leaky": False,
        "random_weights": random_weights,
    }  # fmt: skip


def test_the_plot_is_written_for_any_accuracy_including_zero(tmp_path):
    plot_sweep(_summary(random_weights=True), "logreg", tmp_path / "sweep_logreg.png")
    data = (tmp_path / "sweep_logreg.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000


@pytest.mark.slow  # extracts 18 clips (4 taps in one pass, then a timed single configuration), 8 logreg runs
def test_a_sweep_writes_every_point_and_a_summary_and_shares_the_cache(own_data, tmp_path):
    axes = SweepAxes(layers=("block2", "block1"), poolings=("mean", "max"))
    config = RunConfig(heads=("logreg",), options=FAST, command="audiosep-eval --sweep ...")
    kw = dict(cache_dir=tmp_path / "cache")
    task, extraction = f"csv:{own_data / 'labels.csv'}", ExtractionConfig(checkpoint="random:0")
    result = evaluate_sweep(task, extraction, axes, config, out_dir=tmp_path / "run", baseline=True, **kw)
    summary = json.loads((tmp_path / "run" / "sweep.json").read_text())
    assert summary == json.loads(json.dumps(result.summary)) and summary["format_version"] == 1
    assert [(p["layer"], p["pooling"]) for p in summary["points"]] == axes.taps
    for point in axes.points():
        report = json.loads((tmp_path / "run" / point.name / "results.json").read_text())
        assert report["measured"]["layer"] == point.layer and report["measured"]["pooling"] == point.pooling
    cost = summary["extraction"]
    assert cost["films"]["none"]["taps_extracted"] == 4 and cost["baseline"]["layer"] == "block2"
    assert cost["ratio"] == pytest.approx(cost["sweep_seconds"] / cost["baseline"]["seconds"], rel=1e-2)
    assert summary["random_weights"] is True and "RANDOM WEIGHTS" in (tmp_path / "run" / "sweep.md").read_text()
    assert (tmp_path / "run" / "sweep_logreg.png").read_bytes().startswith(b"\x89PNG")
    assert {"film", "layer", "pooling", "head", "accuracy_mean", "val_score_mean"} <= set(
        (tmp_path / "run" / "sweep.csv").read_text().splitlines()[0].split(",")
    )
    again = evaluate_sweep(task, extraction, axes, config, baseline=False, **kw)
    assert again.summary["extraction"]["films"]["none"]["taps_extracted"] == 0
    block1_max = ExtractionConfig(checkpoint="random:0", layer="block1", pooling="max")
    single = evaluate_extracted(task, block1_max, config, **kw)
    assert single.report["provenance"]["cache"]["extracted_now"] is False
    point = next(e for p, e in result.evaluations.items() if p.tap == ("block1", "max"))
    assert single.report["heads"]["logreg"]["accuracy_mean"] == point.report["heads"]["logreg"]["accuracy_mean"]
