"""Reports: the results.json contract, the CSV/Markdown/PNG run folder and the stdout table."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import replace

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
    "precision": "fp32",
    "encoder": {"layer": "center", "pooling": "mean", "film": "none"},
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


def _report(results, protocol="evar", task=None, options=None, command=None, floor=None):
    from audiosep_kit.evaluate.tasks._task import Task

    task = task or Task(name="toy", label_names=("a", "b", "c"), protocol="folds", splits=("1", "2", "3"))
    return build_report(
        results,
        task=task,
        protocol=PROTOCOLS[protocol],
        seeds=[0, 1],
        options=options or EvalOptions(),
        provenance=PROVENANCE,
        command=command,
        floor=floor,
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
    report = _report(results, protocol="seed")
    paths = write_run_dir(report, results, tmp_path / "run", ("a", "b", "c"))
    data = json.loads(paths["json"].read_text())
    assert data["leaky"] is True and data["protocol"]["name"] == "seed"
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
    assert "linear" in table and "65.5 ± 5.8" in table and "protocol evar" in table


def test_read_results_refuses_unknown_versions(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ArtifactMismatchError, match=r"has format_version 99; this audiosep-kit reads \[1, 2\]"):
        read_results(path)


def test_plotting_leaves_the_global_matplotlib_backend_alone(results, tmp_path):
    before = matplotlib.get_backend()
    write_run_dir(_report(results), results, tmp_path / "run", ("a", "b", "c"))
    assert matplotlib.get_backend() == before


def test_refit_is_recorded_and_never_claimed_for_leaky_protocols(results):
    assert _report(results, options=EvalOptions(refit=True))["protocol"]["refit"] is True
    assert _report(results, protocol="seed", options=EvalOptions(refit=True))["protocol"]["refit"] is False


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


def test_every_report_says_what_was_measured(results, tmp_path):
    """Command, layer, pooling, FiLM, backend, precision, weights identity and test sizes: JSON, CSV, MD."""
    command = "audiosep-eval --task toy --layer center --backend eager"
    paths = write_run_dir(_report(results, command=command), results, tmp_path / "run", ("a", "b", "c"))
    m = read_results(paths["json"])["measured"]
    assert m == {
        "command": command, "layer": "center", "pooling": "mean", "film": "none", "backend": "eager",
        "precision": "fp32", "weights_sha256": "ab" * 32, "weights_source": "x.ckpt", "random_weights": False,
        "n_test": {"fold 1": 6, "fold 2": 6}, "n_test_total": 12, "protocol": "evar",
        "n_train": {"fold 1": 10, "fold 2": 10},
    }  # fmt: skip
    frame = pd.read_csv(paths["csv"])
    assert (frame["layer"] == "center").all() and (frame["backend"] == "eager").all()
    assert (frame["precision"] == "fp32").all() and (frame["weights_sha256"] == "ab" * 32).all()
    assert {"pooling", "film", "random_weights", "n_test"} <= set(frame.columns)
    text = paths["markdown"].read_text()
    for line in (
        f"- command: `{command}`",
        "- encoder: layer center, pooling mean, FiLM none",
        "- engine: backend eager, precision fp32",
        f"- weights: sha256 {'ab' * 32} from x.ckpt",
        "- test set: 12 clips in total (fold 1 6, fold 2 6)",
        "- scored heads trained on: 10 examples per partition (protocol evar)",
    ):
        assert line in text


def test_every_report_names_the_protocol_and_the_scored_models_training_rows(tmp_path):
    """With refit the scored model trained on train+validation: n_train says so in JSON, CSV, MD and the table."""
    results = [replace(_result("linear", f"fold {k}", 0, 0.6), n_train=15 + k, refit=True) for k in (1, 2)] + [
        replace(_result("logreg", f"fold {k}", 0, 0.7), n_train=15 + k, refit=True) for k in (1, 2)
    ]
    report = _report(results, protocol="hear", options=EvalOptions(refit=True))
    paths = write_run_dir(report, results, tmp_path / "run", ("a", "b", "c"))
    data = read_results(paths["json"])
    assert data["protocol"]["name"] == "hear" and data["protocol"]["refit"] is True
    assert data["measured"]["protocol"] == "hear" and data["measured"]["n_train"] == {"fold 1": 16, "fold 2": 17}
    assert [run["n_train"] for run in data["heads"]["linear"]["runs"]] == [16, 17]
    frame = pd.read_csv(paths["csv"])
    assert (frame["protocol"] == "hear").all() and frame["n_train"].tolist() == [16, 17, 16, 17]
    assert frame["refit"].all()
    text = paths["markdown"].read_text()
    assert "- protocol: hear: HEAR-style folds" in text and "(refit: True)" in text
    assert "- scored heads trained on: 16-17 examples per partition (protocol hear)" in text
    table = format_table(report)
    assert "| protocol hear | seeds [0, 1] | scored heads trained on 16-17 examples" in table
    assert "validate on fold k+1" in table
    assert re.search(r"head +runs +n_train", table) and re.search(r"linear +2 +16-17", table)


def test_the_evar_report_says_its_grouping_is_stricter_than_evar(results, tmp_path):
    paths = write_run_dir(_report(results), results, tmp_path / "run", ("a", "b", "c"))
    assert "stricter than EVAR's random carve-out" in paths["markdown"].read_text()
    assert "stricter than EVAR's random carve-out" in read_results(paths["json"])["protocol"]["description"]


def test_reports_of_format_1_are_still_read(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format_version": 1, "heads": {}}))
    assert read_results(path)["format_version"] == 1


def test_absent_classes_are_the_rows_without_test_examples(tmp_path):
    from audiosep_kit.evaluate._confusion import absent_classes, plot_confusion

    matrix = np.array([[3, 1, 0], [0, 0, 0], [0, 2, 4]])
    assert absent_classes(matrix).tolist() == [False, True, False]
    plot_confusion(matrix, ("a", "b", "c"), tmp_path / "m.png", "toy / linear")
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tick_labels_grow_readable_with_many_classes(tmp_path):
    from audiosep_kit.evaluate._confusion import figure_inches, plot_confusion, tick_fontsize

    assert tick_fontsize(5) == 10 and tick_fontsize(50) >= 6
    assert figure_inches(50) > figure_inches(10) >= 5
    matrix = np.eye(50, dtype=int) * 2
    plot_confusion(matrix, [f"class {i}" for i in range(50)], tmp_path / "big.png", "esc50 / linear")
    assert (tmp_path / "big.png").stat().st_size > 0


def test_png_title_carries_the_random_weights_and_leaky_warnings():
    from audiosep_kit.evaluate._confusion import confusion_title

    title = confusion_title("esc50", "linear", leaky=True, random_weights=True)
    assert title.startswith("esc50 / linear") and "RANDOM WEIGHTS" in title and "LEAKY" in title
    assert confusion_title("esc50", "linear", leaky=False, random_weights=False) == "esc50 / linear"


def test_icbhi_floor_is_in_the_json_and_a_row_of_every_table(tmp_path):
    """The constant-'normal' floor (Sp 100, Se 0, Score 50) and the majority floor sit under the heads."""
    from audiosep_kit.evaluate._floors import floor_scores
    from audiosep_kit.evaluate._protocols import Partition
    from audiosep_kit.evaluate.tasks import TASKS

    task = TASKS["icbhi"]
    labels = np.array([0, 0, 1, 0, 0, 1, 2, 3])
    part = Partition("official split", np.arange(3), np.array([], dtype=np.int64), np.arange(3, 8), "none")
    base = _result("linear", "official split", 0, 0.6)
    scores = {**base.scores, "icbhi_score": 0.55, "sp": 0.6}
    results = [dataclasses.replace(base, scores=scores, confusion=np.eye(4, dtype=int))]
    report = _report(results, protocol="split", task=task, floor=floor_scores(labels, [part], task))
    paths = write_run_dir(report, results, tmp_path / "run", task.label_names)
    floor = read_results(paths["json"])["floor"]
    assert set(floor) == {"majority", "constant_normal"}
    assert (floor["constant_normal"]["icbhi_score_mean"], floor["constant_normal"]["sp_mean"]) == (0.5, 1.0)
    assert floor["constant_normal"]["se_mean"] == 0.0 and floor["constant_normal"]["accuracy_mean"] == 0.4
    row = r"constant 'normal' floor[ |]+1[ |]+50\.0 ± 0\.0[ |]+0\.0 ± 0\.0[ |]+100\.0 ± 0\.0[ |]+40\.0 ± 0\.0"
    for text in (format_table(report), paths["markdown"].read_text()):
        assert re.search(row, text), text
        assert "majority-class floor ('normal')" in text
        assert text.index("linear") < text.index("constant 'normal' floor")


def test_reports_without_a_floor_still_print():
    """A report built without floors (or read from an older run) has an empty block and no floor rows."""
    report = _report([_result("linear", "fold 1", 0, 0.7)])
    assert report["floor"] == {} and "floor" not in format_table(report)
    del report["floor"]
    assert "linear" in format_table(report)


def test_run_folder_gets_the_embedding_map_when_given_features(results, tmp_path):
    """With features and labels the map is drawn beside the confusion matrices and shown in summary.md."""
    X = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    labels = np.arange(30) % 3
    report = _report(results)
    paths = write_run_dir(report, results, tmp_path / "run", ("a", "b", "c"), features=X, labels=labels)
    assert paths["embedding_map"] == tmp_path / "run" / "embedding_tsne.png"
    assert paths["embedding_map"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![2-D map of the features by class](embedding_tsne.png)" in paths["markdown"].read_text()
