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
    assert "logreg" in result.output and "±" in result.output and "protocol folds" in result.output
    data = json.loads((out / "results.json").read_text())
    assert data["heads"]["logreg"]["accuracy_mean"] > 0.5 and data["leaky"] is False
    assert data["heads"]["logreg"]["device"] == "cpu" and data["device_requested"] == "cpu"
    assert data["measured"]["command"] == "audiosep-eval --task esc50" and data["measured"]["backend"] == "precomputed"
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.csv", "summary.md", "confusion_logreg.png"}


def test_seed_protocol_is_labelled_leaky(data_root, features, tmp_path):
    result = _invoke(
        [
            "--features",
            features,
            "--task",
            "esc50",
            "--heads",
            "logreg",
            "--protocol",
            "seed-project",
            "--out",
            tmp_path / "out",
        ],
        env={"AUDIOSEP_DATA_ROOT": str(data_root)},
    )
    assert result.exit_code == 0, result.output
    assert "LEAKY" in result.output
    assert json.loads((tmp_path / "out" / "results.json").read_text())["protocol"]["name"] == "seed-project"


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
