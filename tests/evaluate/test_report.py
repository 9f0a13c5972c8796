"""Reports: the results.json contract, the CSV/Markdown/PNG run folder and the stdout table."""

from __future__ import annotations

import json
import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from audiosep_kit.errors import ArtifactMismatchError
from audiosep_kit.evaluate._protocols import PROTOCOLS, EvalOptions, RunResult, Selection
from audiosep_kit.evaluate._report import (
    REPORT_FORMAT_VERSION,
    build_report,
    format_table,
    read_results,
    summarize,
    write_run_dir,
)

PROVENANCE = {
    "source": "extracted",
    "weights": {"sha256": "ab" * 32, "source": "x.ckpt", "random_weights": False},
    "backend": "eager",
    "executed": {"device": "cpu"},
}


def _result(
    head: str, partition: str, seed: int, acc: float, leaky: bool = False, se: float = 0.5, device: str = "cpu"
) -> RunResult:
    sel = Selection({"lr": 1e-3}, 7, acc, ({"params": {"lr": 1e-3}, "best_epoch": 7, "val_score": acc},))
    scores = {"accuracy": acc, "macro_f1": acc - 0.1, "balanced_accuracy": acc, "se": se}
    confusion = np.eye(3, dtype=int) * 2
    return RunResult(head, partition, seed, sel, scores, confusion, 10, 5, 6, "fold 2", leaky, device)


@pytest.fixture
def results():
    return [_result("linear", f"fold {k}", s, 0.5 + 0.1 * k + 0.01 * s) for k in (1, 2) for s in (0, 1)] + [
        _result("logreg", "fold 1", 0, 0.9)
    ]


def test_summarize_mean_and_sample_std_over_partitions_and_seeds(results):
    out = summarize(results, ["accuracy", "macro_f1"])
    accs = [0.6, 0.61, 0.7, 0.71]
    assert out["linear"]["n_runs"] == 4
    assert out["linear"]["accuracy_mean"] == pytest.approx(np.mean(accs))
    assert out["linear"]["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert out["logreg"]["accuracy_std"] == 0.0  # one run
    assert out["logreg"]["macro_f1_mean"] == pytest.approx(0.8)


def _report(results, protocol="folds", task=None, options=None):
    from audiosep_kit.evaluate.tasks._task import Task

    task = task or Task(name="toy", label_names=("a", "b", "c"), protocol="folds", splits=("1", "2", "3"))
    return build_report(
        results,
        task=task,
        protocol=PROTOCOLS[protocol],
        seeds=[0, 1],
        options=options or EvalOptions(),
        provenance=PROVENANCE,
    )


def test_results_json_contract(results, tmp_path):
    report = _report(results)
    paths = write_run_dir(report, results, tmp_path / "run", ("a", "b", "c"))
    data = read_results(paths["json"])
    assert data["format_version"] == REPORT_FORMAT_VERSION
    for head in ("linear", "logreg"):
        assert {"accuracy_mean", "accuracy_std", "macro_f1_mean"} <= set(data["heads"][head])
    assert data["leaky"] is False and data["protocol"]["leaky"] is False
    assert data["seeds"] == [0, 1] and data["date"]
    assert data["provenance"]["weights"]["sha256"] == "ab" * 32
    assert data["provenance"]["weights"]["random_weights"] is False
    assert data["provenance"]["backend"] == "eager" and data["provenance"]["executed"] == {"device": "cpu"}
    assert {"python", "torch", "numpy"} <= set(data["versions"])
    assert len(data["heads"]["linear"]["runs"]) == 4


def test_run_folder_has_csv_markdown_and_pngs(results, tmp_path):
    paths = write_run_dir(_report(results), results, tmp_path / "run", ("a", "b", "c"))
    frame = pd.read_csv(paths["csv"])
    assert len(frame) == 5 and {"head", "partition", "seed", "accuracy", "leaky"} <= set(frame.columns)
    text = paths["markdown"].read_text()
    assert re.search(r"\| linear +\| +4 \|", text) and "LEAKY" not in text and "confusion_linear.png" in text
    for head in ("linear", "logreg"):
        assert paths[f"confusion_{head}"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "results.json", "results.csv", "summary.md", "confusion_linear.png", "confusion_logreg.png"
    }  # fmt: skip


def test_leaky_reports_say_so_everywhere(tmp_path):
    results = [_result("mlp3", "random 80/20 (seed 0)", 0, 0.8, leaky=True)]
    report = _report(results, protocol="seed-project")
    paths = write_run_dir(report, results, tmp_path / "run", ("a", "b", "c"))
    data = json.loads(paths["json"].read_text())
    assert data["leaky"] is True and data["protocol"]["name"] == "seed-project"
    assert "LEAKY" in paths["markdown"].read_text()
    assert format_table(report).startswith("!! LEAKY PROTOCOL")
    assert pd.read_csv(paths["csv"])["leaky"].all()


def test_nan_scores_become_null_in_json(tmp_path):
    from audiosep_kit.evaluate.tasks._task import Task

    task = Task(
        name="lungs",
        label_names=("normal", "crackle", "wheeze"),
        protocol="split",
        splits=("train", "test"),
        scores=("se", "accuracy"),
    )
    results = [_result("linear", "official split", 0, 0.5, se=float("nan"))]
    report = _report(results, task=task)
    assert math.isnan(report["heads"]["linear"]["se_mean"])
    paths = write_run_dir(report, results, tmp_path / "run", task.label_names)
    assert "NaN" not in paths["json"].read_text()
    assert read_results(paths["json"])["heads"]["linear"]["se_mean"] is None
    assert "n/a" in format_table(report)


def test_random_weights_are_flagged(results, tmp_path):
    report = _report(results)
    report["provenance"] = {**PROVENANCE, "weights": {"sha256": "0" * 64, "random_weights": True}}
    assert "RANDOM WEIGHTS" in format_table(report)
    assert "RANDOM WEIGHTS" in write_run_dir(report, results, tmp_path / "r", ("a", "b", "c"))["markdown"].read_text()
    assert "RANDOM" not in format_table(_report(results))


def test_table_shows_mean_and_std_in_percent(results):
    table = format_table(_report(results))
    assert "linear" in table and "65.5 ± 5.8" in table and "protocol folds" in table


def test_read_results_refuses_unknown_versions(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ArtifactMismatchError, match=r"has format_version 99; this audiosep-kit reads \[1\]"):
        read_results(path)


def test_plotting_leaves_the_global_matplotlib_backend_alone(results, tmp_path):
    before = matplotlib.get_backend()
    write_run_dir(_report(results), results, tmp_path / "run", ("a", "b", "c"))
    assert matplotlib.get_backend() == before


def test_refit_is_recorded_and_never_claimed_for_leaky_protocols(results):
    assert _report(results, options=EvalOptions(refit=True))["protocol"]["refit"] is True
    assert _report(results, protocol="seed-project", options=EvalOptions(refit=True))["protocol"]["refit"] is False


def test_devices_are_recorded_as_they_ran_per_head(tmp_path):
    """Requested cuda, linear ran there, logreg (scikit-learn) on the CPU: the report says exactly that."""
    results = [_result("linear", "fold 1", 0, 0.7, device="cuda:0"), _result("logreg", "fold 1", 0, 0.8)]
    report = _report(results, options=EvalOptions(device="cuda"))
    paths = write_run_dir(report, results, tmp_path / "run", ("a", "b", "c"))
    data = read_results(paths["json"])
    assert data["device_requested"] == "cuda"
    assert data["heads"]["linear"]["device"] == "cuda:0" and data["heads"]["logreg"]["device"] == "cpu"
    assert data["heads"]["logreg"]["runs"][0]["device"] == "cpu"
    assert "device" not in data["protocol"]["options"]
    assert "- devices: requested cuda; heads ran on linear cuda:0, logreg cpu" in paths["markdown"].read_text()
