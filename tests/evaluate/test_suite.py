"""Several tasks x backends in one run: task discovery, the cross-task table, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiosep_kit.errors import ConfigError, DatasetError
from audiosep_kit.evaluate import ExtractionConfig, RunConfig, evaluate_suite, resolve_task_list
from audiosep_kit.evaluate._runner import Evaluation
from audiosep_kit.evaluate._suite import SuiteEntry, suite_rows
from audiosep_kit.evaluate._suite_plot import suite_title


def test_all_finds_one_task_per_family_present(tmp_path):
    for folder in ("esc50", "nsynth", "speech_commands_sc09"):  # v0.01 through its SC09 alias
        (tmp_path / folder).mkdir()
    assert resolve_task_list("all", tmp_path) == ["esc50", "nsynth", "speechcommands-v1"]
    (tmp_path / "speech_commands_v2").mkdir()
    assert resolve_task_list("all", tmp_path)[-1] == "speechcommands-v2"


def test_all_with_no_dataset_folder_says_what_it_looked_for(tmp_path):
    with pytest.raises(DatasetError, match=r"found no dataset folder .* esc50/, urbansound8k/"):
        resolve_task_list("all", tmp_path)


def test_a_comma_list_is_checked_and_deduplicated():
    assert resolve_task_list("esc50, icbhi,esc50", None) == ["esc50", "icbhi"]
    with pytest.raises(ConfigError, match="must be one of"):
        resolve_task_list("esc50,esc99", None)


def _report(task: str, accuracy: float, *, random: bool = True) -> dict:
    run = {"n_train": 80, "n_test": 20}
    return {
        "task": {"name": task, "scores": ["accuracy", "macro_f1"]},
        "protocol": {"name": "folds"},
        "leaky": False,
        "measured": {
            "n_test_total": 20,
            "layer": "center",
            "pooling": "mean",
            "film": "none",
            "weights_sha256": "ab" * 32,
            "random_weights": random,
        },  # fmt: skip
        "heads": {"logreg": {"accuracy_mean": accuracy, "accuracy_std": 0.01, "n_runs": 2, "runs": [run, run]}},
    }


class FakeEvaluate:
    """Stands in for evaluate_extracted: scores by backend, refuses one task, counts its calls."""

    def __init__(self, refuse: str = "icbhi") -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse = refuse

    def __call__(self, task, extraction, config, *, out_dir, **kw):
        self.calls.append((task, extraction.backend))
        if task == self.refuse:
            raise DatasetError(f"{task}: the split protocol cannot run on these 3 examples")
        out_dir.mkdir(parents=True, exist_ok=True)
        report = _report(task, 0.50 if extraction.backend == "eager" else 0.48)
        (out_dir / "results.json").write_text(json.dumps({"format_version": 2, **report}))
        return Evaluation(report, [], {})


EXTRACTIONS = [ExtractionConfig("random:0"), ExtractionConfig("random:0", backend="fast", precision="bf16")]


def test_suite_writes_one_table_with_backend_differences_and_lists_refusals(tmp_path):
    fake = FakeEvaluate()
    config = RunConfig(heads=("logreg",), command="audiosep-eval --task all")
    suite = evaluate_suite(["esc50", "icbhi"], EXTRACTIONS, config, tmp_path, evaluate_one=fake)
    assert not suite.complete
    assert [(e.task, e.backend, e.status) for e in suite.entries] == [
        ("esc50", "eager:fp32", "ok"), ("esc50", "fast:bf16", "ok"),
        ("icbhi", "eager:fp32", "refused"), ("icbhi", "fast:bf16", "refused"),
    ]  # fmt: skip
    fast = next(r for r in suite.rows if r["backend"] == "fast:bf16")
    assert fast["delta_vs_eager_points"] == pytest.approx(-2.0) and fast["n_train"] == 80
    markdown = suite.paths["markdown"].read_text()
    assert "RANDOM WEIGHTS" in markdown and "Δ vs eager (points)" in markdown and "-2.00" in markdown
    assert fast["features_rows_compared"] is None and "features: 1 - min cos" in markdown  # fakes keep no store
    assert "icbhi (eager:fp32): refused: icbhi: the split protocol cannot run" in markdown
    document = json.loads(suite.paths["json"].read_text())
    assert document["format_version"] == 1 and document["command"] == "audiosep-eval --task all"
    assert suite.paths["png_logreg"].stat().st_size > 1000
    assert (tmp_path / "esc50" / "fast-bf16" / "results.json").is_file()


def test_a_rerun_reads_finished_pairs_back_and_retries_refused_ones(tmp_path):
    fake = FakeEvaluate()
    config = RunConfig(heads=("logreg",))
    evaluate_suite(["esc50", "icbhi"], EXTRACTIONS, config, tmp_path, evaluate_one=fake)
    fake.calls.clear()
    suite = evaluate_suite(["esc50", "icbhi"], EXTRACTIONS, config, tmp_path, evaluate_one=fake)
    assert fake.calls == [("icbhi", "eager"), ("icbhi", "fast")]  # esc50 finished: read back, not retrained
    assert [e.reused for e in suite.entries if e.task == "esc50"] == [True, True]
    fake.calls.clear()
    other = RunConfig(heads=("logreg",), seeds=(0, 1))  # another configuration: nothing is reused
    evaluate_suite(["esc50"], EXTRACTIONS[:1], other, tmp_path, evaluate_one=fake)
    assert fake.calls == [("esc50", "eager")]


def test_rows_without_an_eager_run_have_no_difference():
    entry = SuiteEntry("esc50", "onnx:fp16", "ok", Path("x"), report=_report("esc50", 0.5))
    assert suite_rows([entry])[0]["delta_vs_eager_points"] is None


def test_the_chart_title_carries_the_random_weights_warning():
    rows = suite_rows([SuiteEntry("esc50", "eager:fp32", "ok", Path("x"), report=_report("esc50", 0.5))])
    assert "RANDOM WEIGHTS" in suite_title(rows, "logreg") and "abababababab" in suite_title(rows, "logreg")
    rows[0]["random_weights"] = False
    assert "RANDOM" not in suite_title(rows, "logreg")


def test_an_empty_suite_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least one task and one backend"):
        evaluate_suite([], EXTRACTIONS, RunConfig(), tmp_path, evaluate_one=FakeEvaluate())
