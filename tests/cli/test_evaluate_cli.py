"""audiosep-eval: option parsing, precomputed-feature runs, checkpoint resolution and subcommands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from audiosep_kit.cli.evaluate import main


def _esc50_root(root: Path) -> Path:
    """Synthetic ``esc50/meta/esc50.csv`` (official columns, 50 targets x 5 folds, no audio)."""
    from audiosep_kit.evaluate.tasks._esc50 import ESC50_LABELS

    meta = root / "esc50" / "meta"
    meta.mkdir(parents=True)
    with open(meta / "esc50.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for fold in range(1, 6):
            for target in range(50):
                writer.writerow(
                    [
                        f"{fold}-{target}-A-{target}.wav",
                        fold,
                        target,
                        ESC50_LABELS[target],
                        False,
                        f"{fold}{target}",
                        "A",
                    ]
                )
    return root


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return _esc50_root(tmp_path / "data")


@pytest.fixture
def features(tmp_path: Path) -> Path:
    labels = np.tile(np.arange(50), 5)
    X = np.random.default_rng(0).normal(size=(250, 50)).astype(np.float32)
    X[np.arange(250), labels] += 4.0
    path = tmp_path / "features.pt"
    torch.save({"features": torch.from_numpy(X), "labels": torch.from_numpy(labels)}, path)
    return path


def _invoke(args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env or {}, catch_exceptions=False)


def test_help_lists_the_options():
    result = _invoke(["--help"])
    assert result.exit_code == 0
    for option in ("--task", "--features", "--protocol", "--backend", "--heads", "--seeds", "--pad-to-32"):
        assert option in result.output


def test_help_names_every_protocol_and_the_fold_default():
    text = " ".join(_invoke(["--help"]).output.split())
    assert "official: evar for fold tasks" in text and "folds = hear, seed-project = seed" in text
    assert "[official|evar|hear|split|seed|folds|seed-project]" in text and "LEAKY" in text


def test_no_arguments_shows_help():
    assert "Usage:" in CliRunner().invoke(main, []).output


@pytest.mark.parametrize("prefix", [[], ["run"]])
def test_precomputed_features_run_end_to_end(prefix, data_root, features, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["audiosep-eval", "--task", "esc50"])  # what a shell would have passed
    result = _invoke(
        [
            *prefix,
            "--features",
            features,
            "--task",
            "esc50",
            "--data-root",
            data_root,
            "--heads",
            "logreg",
            "--seeds",
            "0",
            "--out",
            out,
        ]
    )
    assert result.exit_code == 0, result.output
    assert "logreg" in result.output and "±" in result.output and "protocol evar" in result.output
    data = json.loads((out / "results.json").read_text())
    assert data["heads"]["logreg"]["accuracy_mean"] > 0.5 and data["leaky"] is False
    assert data["heads"]["logreg"]["device"] == "cpu" and data["device_requested"] == "cpu"
    assert data["measured"]["command"] == "audiosep-eval --task esc50" and data["measured"]["backend"] == "precomputed"
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.csv", "summary.md", "confusion_logreg.png"}


@pytest.mark.parametrize("name", ["seed", "seed-project"])  # the old name still runs it
def test_seed_protocol_is_labelled_leaky(data_root, features, tmp_path, name):
    result = _invoke(
        [
            "--features",
            features,
            "--task",
            "esc50",
            "--heads",
            "logreg",
            "--protocol",
            name,
            "--out",
            tmp_path / "out",
        ],
        env={"AUDIOSEP_DATA_ROOT": str(data_root)},
    )
    assert result.exit_code == 0, result.output
    assert "LEAKY" in result.output
    assert json.loads((tmp_path / "out" / "results.json").read_text())["protocol"]["name"] == "seed"


def test_labels_that_disagree_exit_with_a_clear_error(data_root, tmp_path):
    path = tmp_path / "wrong.pt"
    torch.save({"features": torch.zeros(250, 4), "labels": torch.zeros(250, dtype=torch.long)}, path)
    result = CliRunner().invoke(main, ["--features", str(path), "--task", "esc50", "--data-root", str(data_root)])
    assert result.exit_code == 2 and "labels disagree" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--heads", "logreg"], "--task is required"),
        (
            ["--task", "esc50", "--heads", "svm", "--features", "{features}"],
            "`head` must be one of {'linear', 'mlp3', 'logreg'}; got 'svm'",
        ),
        (["--task", "esc50", "--seeds", "a,b"], "expected comma-separated int values"),
        (["--task", "esc50", "--protocol", "leaky"], "'leaky' is not one of"),
        (["--task", "esc50", "--device", "tpu"], "`device` must be one of {'cpu', 'cuda', 'cuda:N'}; got 'tpu'"),
        (["--task", "nope", "--features", "{features}"], "`task` must be one of"),
    ],
)
def test_bad_options_exit_2_with_the_reason(args, message, features, data_root):
    args = [a.replace("{features}", str(features)) for a in args] + ["--data-root", str(data_root)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output


def test_device_cuda_with_only_logreg_on_precomputed_features_is_refused(data_root, features):
    result = CliRunner().invoke(
        main, ["--features", str(features), "--task", "esc50", "--data-root", str(data_root), "--heads", "logreg",
               "--device", "cuda"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--device cuda is used by no part of this run" in result.output and "(linear, mlp3)" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_device_cuda_without_cuda_is_refused_before_training(data_root, features, tmp_path):
    args = ["--features", features, "--task", "esc50", "--data-root", data_root, "--heads", "logreg,linear"]
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--device", "cuda", "--out", tmp_path / "o"]])
    assert result.exit_code == 2 and "device 'cuda' was requested but torch sees no CUDA device" in result.output
    assert not (tmp_path / "o").exists()


def test_backend_onnx_speechcommands_parses_exactly_as_documented(monkeypatch, tmp_path):
    from audiosep_kit.cli import evaluate as cli_evaluate
    from audiosep_kit.evaluate import Evaluation

    seen = {}

    def fake_evaluate_extracted(task, extraction, config, **kw):
        seen.update(task=task, extraction=extraction, config=config, **kw)
        report = {
            "leaky": False,
            "task": {"name": task, "scores": ["accuracy"]},
            "protocol": {"name": "split"},
            "seeds": list(config.seeds),
            "heads": {},
        }
        return Evaluation(report, [], {})

    monkeypatch.setattr(cli_evaluate, "evaluate_extracted", fake_evaluate_extracted)
    env = {"AUDIOSEP_CHECKPOINT": "random:0", "AUDIOSEP_DATA_ROOT": str(tmp_path / "data")}
    result = _invoke(["--backend", "onnx", "--task", "speechcommands-v2"], env=env)
    assert result.exit_code == 0, result.output
    assert seen["task"] == "speechcommands-v2" and seen["extraction"].backend == "onnx"
    assert seen["extraction"].checkpoint == "random:0" and seen["extraction"].pad_to_32 is True
    assert seen["data_root"] == tmp_path / "data"
    assert seen["config"].heads == ("linear", "mlp3", "logreg") and seen["config"].protocol == "official"
    assert seen["config"].embedding_map is True
    assert _invoke(["--task", "speechcommands-v2", "--no-embedding-map"], env=env).exit_code == 0
    assert seen["config"].embedding_map is False


def test_missing_checkpoint_names_the_flag_and_the_variable(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--task", "esc50"], env={"AUDIOSEP_CHECKPOINT": ""})
    assert result.exit_code == 2
    assert "--checkpoint" in result.output and "AUDIOSEP_CHECKPOINT" in result.output


def test_other_tools_can_be_added_as_subcommands():
    @click.command("parity")
    def parity() -> None:
        click.echo("parity ran")

    main.add_command(parity)
    try:
        result = _invoke(["parity"])
    finally:
        main.commands.pop("parity")
    assert result.exit_code == 0 and "parity ran" in result.output


SAMPLE_RATE = 32_000
_CLASSES = {"bird": 3000.0, "dog": 300.0, "hum": 1200.0}


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    """3 classes x 6 clips of 0.5 s (a tone per class plus noise) in ``clips/<class>/``, and labels.csv."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    rows = ["path,label"]
    for name, freq in _CLASSES.items():
        (root / "clips" / name).mkdir(parents=True)
        for i in range(6):
            wave = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.02 * i) * t) + 0.05 * rng.normal(size=t.size)
            sf.write(root / "clips" / name / f"{i}.wav", wave.astype(np.float32), SAMPLE_RATE)
            rows.append(f"clips/{name}/{i}.wav,{name}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _eval_scores(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["heads"]["logreg"]


_REPORT_FILES = {"results.json", "results.csv", "summary.md", "confusion_logreg.png"}


@pytest.mark.slow  # extracts 18 clips with random weights on the CPU (~20 s)
def test_csv_and_folder_tasks_evaluate_end_to_end(own_data, tmp_path):
    common = ["--checkpoint", "random:0", "--heads", "logreg", "--cache-dir", tmp_path / "cache"]
    for task, out in (
        (f"csv:{own_data / 'labels.csv'}", tmp_path / "csv"),
        (f"folder:{own_data / 'clips'}", tmp_path / "dir"),
    ):
        result = _invoke(["--task", task, *common, "--out", out])
        assert result.exit_code == 0, result.output
        assert {p.name for p in out.iterdir()} >= _REPORT_FILES and "RANDOM WEIGHTS" in result.output
        report = json.loads((out / "results.json").read_text())
        assert report["protocol"]["name"] == "evar" and report["heads"]["logreg"]["n_runs"] == 5
        assert report["task"]["num_classes"] == 3 and report["task"]["name"] == task.split(":")[0] + ":" + str(
            Path(task.split(":", 1)[1]).resolve()
        )
    # the folder scan lists the files in the CSV's order, so the generated folds and scores are the same
    assert _eval_scores(tmp_path / "csv") == _eval_scores(tmp_path / "dir")


@pytest.mark.slow  # extracts 18 clips with random weights on the CPU (~20 s)
def test_a_store_from_audiosep_extract_evaluates_like_direct_extraction(own_data, tmp_path):
    from audiosep_kit.cli.extract import main as extract_main

    store = tmp_path / "store"
    extracted = CliRunner().invoke(
        extract_main, [str(own_data / "clips"), "--out", str(store), "--checkpoint", "random:0"], catch_exceptions=False
    )
    assert extracted.exit_code == 0, extracted.output
    task = ["--task", f"csv:{own_data / 'labels.csv'}", "--heads", "logreg"]
    direct = _invoke([*task, "--checkpoint", "random:0", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "a"])
    stored = _invoke([*task, "--features", store, "--out", tmp_path / "b"])
    assert direct.exit_code == 0 and stored.exit_code == 0, direct.output + stored.output
    assert _eval_scores(tmp_path / "a") == _eval_scores(tmp_path / "b")
    provenance = json.loads((tmp_path / "b" / "results.json").read_text())["provenance"]
    assert provenance["weights"]["random_weights"] is True and provenance["backend"] == "eager"
    assert provenance["source"] == f"feature store {store}" and "RANDOM WEIGHTS" in stored.output


@pytest.mark.slow  # extracts 6 clips
def test_a_store_missing_examples_is_refused_naming_them(own_data, tmp_path):
    from audiosep_kit.cli.extract import main as extract_main

    store = tmp_path / "store"
    args = [str(own_data / "clips" / "dog"), "--out", str(store), "--checkpoint", "random:0"]
    assert CliRunner().invoke(extract_main, args, catch_exceptions=False).exit_code == 0
    result = CliRunner().invoke(main, ["--task", f"csv:{own_data / 'labels.csv'}", "--features", str(store)])
    assert result.exit_code == 2 and "12 of the task's 18 examples are not in the store" in result.output
    assert "bird/0.wav" in result.output


def test_default_run_folder_of_a_csv_task_is_file_system_safe(own_data, tmp_path, monkeypatch):
    from audiosep_kit.cli import evaluate as cli_evaluate
    from audiosep_kit.evaluate import Evaluation

    seen = {}

    def fake(task, extraction, config, **kw):
        seen.update(kw)
        report = {
            "leaky": False,
            "task": {"name": task, "scores": []},
            "protocol": {"name": "folds"},
            "seeds": [0],
            "heads": {},
        }
        return Evaluation(report, [], {})

    monkeypatch.setattr(cli_evaluate, "evaluate_extracted", fake)
    assert _invoke(["--task", f"csv:{own_data / 'labels.csv'}", "--checkpoint", "random:0"]).exit_code == 0
    assert seen["out_dir"].name.startswith("csv-labels_official_")


def test_several_tasks_refuse_inputs_that_belong_to_one(features, data_root):
    result = CliRunner().invoke(main, ["--task", "all", "--features", str(features), "--data-root", str(data_root)])
    assert result.exit_code == 2 and "--features names one task's or one backend's input" in result.output


def test_task_all_without_any_dataset_folder_says_so(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["--task", "all", "--data-root", str(empty), "--checkpoint", "random:0"])
    assert result.exit_code == 2 and "--task all found no dataset folder" in result.output


def test_a_refused_task_in_a_suite_is_listed_with_the_fix_spelled_as_options(data_root, tmp_path):
    """The ESC-50 folder has its metadata and no audio: the suite lists it as refused (exit 3) and its
    reason names --allow-missing / --data-root, not the library's keyword spellings, on screen and in suite.md."""
    out = tmp_path / "s"
    result = CliRunner().invoke(
        main, ["--task", "all", "--data-root", str(data_root), "--checkpoint", "random:0", "-o", str(out)]
    )
    assert result.exit_code == 3, result.output
    text = result.output + (out / "suite.md").read_text()
    assert "refused: esc50" in text and "--allow-missing" in text and "--data-root" in text
    assert "allow_missing=" not in text and "data_root=" not in text


@pytest.mark.slow
def test_backends_and_tasks_in_one_run_write_the_cross_task_table_and_resume(tmp_path):
    """Two backends on the demo words: one table with fast's difference to eager; a rerun reads both back."""
    from audiosep_kit.evaluate import make_demo_dataset

    root = make_demo_dataset(tmp_path / "data", per_word=6)
    args = ["--task", "demo-words", "--backends", "eager,fast", "--data-root", str(root), "--checkpoint", "random:0",
            "--heads", "logreg", "--no-embedding-map", "--cache-dir", str(tmp_path / "cache"),
            "-o", str(tmp_path / "s")]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    document = json.loads((tmp_path / "s" / "suite.json").read_text())
    assert [(e["backend"], e["status"], e["reused"]) for e in document["entries"]] == [
        ("eager:fp32", "ok", False), ("fast:fp32", "ok", False)
    ]  # fmt: skip
    fast = next(r for r in document["rows"] if r["backend"] == "fast:fp32")
    assert fast["delta_vs_eager_points"] is not None and abs(fast["delta_vs_eager_points"]) < 1e-6  # fp32: same
    assert "RANDOM WEIGHTS" in (tmp_path / "s" / "suite.md").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    reread = json.loads((tmp_path / "s" / "suite.json").read_text())
    assert all(e["reused"] for e in reread["entries"])
