"""The options every command shares (``cli/_options.py``): --model-path only with a backend that loads one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiosep_kit.cli.evaluate import main as evaluate_main
from audiosep_kit.cli.extract import main as extract_main


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"never read: the usage check comes first")
    return path


@pytest.mark.parametrize("backend", ["eager", "compile", "fast"])
def test_extract_model_path_with_a_backend_without_artifacts_is_a_usage_error(backend, artifact, tmp_path):
    clip = tmp_path / "a.wav"
    sf.write(clip, np.zeros(16000, np.float32), 32000)
    args = [str(clip), "--out", str(tmp_path / "s"), "--checkpoint", "random:0", "--backend", backend]
    result = CliRunner().invoke(extract_main, [*args, "--model-path", str(artifact)])
    assert result.exit_code == 2, result.output
    assert f"--backend {backend} loads no exported artifact" in result.output
    assert "--model-path is for --backend onnx or aoti" in result.output
    assert not (tmp_path / "s").exists()


def test_evaluate_model_path_with_the_default_backend_is_a_usage_error(artifact):
    """The option order does not matter: --model-path before --backend is checked too."""
    result = CliRunner().invoke(
        evaluate_main, ["--model-path", str(artifact), "--task", "esc50", "--checkpoint", "random:0"]
    )
    assert result.exit_code == 2 and "Invalid value for '--model-path': --backend eager" in result.output


# --- one spelling per concept across every command -------------------------------------------------------

from audiosep_kit.cli import bench as cli_bench  # noqa: E402
from audiosep_kit.cli import export as cli_export  # noqa: E402
from audiosep_kit.cli._options import BackendList, DeviceType, cli_spelling  # noqa: E402

COMMANDS = {
    "audiosep-extract": extract_main,
    "audiosep-eval": evaluate_main,
    "audiosep-export onnx": cli_export.main.commands["onnx"],
    "audiosep-export aoti": cli_export.main.commands["aoti"],
    "audiosep-export parity": cli_export.main.commands["parity"],
    "audiosep-bench": cli_bench.main,
}


def _option(command, name):
    found = [p for p in command.params if name in (*p.opts, *getattr(p, "secondary_opts", ()))]
    return found[0] if found else None


@pytest.mark.parametrize("name", list(COMMANDS))
def test_shared_options_have_one_spelling_everywhere(name):
    """Output, progress, device, precision and backend read the same in every command that has them."""
    command = COMMANDS[name]
    out = _option(command, "-o")
    assert out is not None and out.opts[:3] == ["-o", "--out", "--output"], f"{name}: {out and out.opts}"
    progress = _option(command, "--progress")
    assert progress is not None and progress.secondary_opts == ["--no-progress"] and progress.default is None
    device = _option(command, "--device")
    if device is not None:
        assert isinstance(device.type, DeviceType) and device.default == "cpu"
    precision = _option(command, "--precision")
    if precision is not None:
        assert precision.default == "fp32" and "fp32" in precision.type.choices
    backends = _option(command, "--backends")
    if backends is not None:
        assert isinstance(backends.type, BackendList)
    assert _option(command, "--json") is None or _option(command, "--json") is out  # --json is only an alias
    for legacy in ("--fp16", "--onnx-fp16", "--output-dir"):
        assert _option(command, legacy) is None, f"{name} still has {legacy}"


def test_shared_help_texts_are_identical():
    helps = {n: _option(c, "--progress").help for n, c in COMMANDS.items()}
    assert len(set(helps.values())) == 1, helps
    caches = {n: o.help for n, c in COMMANDS.items() if (o := _option(c, "--cache-dir")) is not None}
    assert set(caches) >= {"audiosep-extract", "audiosep-eval", "audiosep-export parity", "audiosep-bench"}
    assert len(set(caches.values())) == 1 and all(_option(COMMANDS[n], "--cache-dir").envvar == "AUDIOSEP_CACHE"
                                                  for n in caches)  # fmt: skip


@pytest.mark.parametrize(
    ("given", "expected"),
    [("eager", ("eager:fp32",)), ("fast,onnx:fp16,fast", ("fast:fp32", "onnx:fp16")), ("fast:bf16", ("fast:bf16",))],
)
def test_backend_lists_default_to_fp32_and_drop_repeats(given, expected):
    assert BackendList().convert(given, None, None) == expected


@pytest.mark.parametrize("bad", ["fast:fp16", "tensorflow", "onnx:int8", ","])
def test_a_backend_list_entry_the_registry_lacks_is_refused_with_the_valid_ones(bad):
    with pytest.raises(Exception, match=r"not a backend this build offers|at least one backend"):
        BackendList().convert(bad, None, None)


def test_backend_options_are_for_the_bench_list_only():
    """audiosep-bench's list takes configured variants (checked by the registry); the other lists refuse them."""
    item = "onnx:fp32+conv_algo_search=HEURISTIC"
    assert BackendList(configured=True).convert(f"eager,{item}", None, None) == ("eager:fp32", item)
    with pytest.raises(Exception, match=r"backend options \(\+key=value\) are taken by audiosep-bench only"):
        BackendList().convert(item, None, None)
    with pytest.raises(Exception, match=r"backend 'eager' takes no option 'conv_algo_search'"):
        BackendList(configured=True).convert("eager+conv_algo_search=HEURISTIC", None, None)


@pytest.mark.parametrize(
    ("python", "cli"),
    [
        ("pass data_root= (CLI --data-root) or set $X", "pass --data-root or set $X"),
        ("or pass allow_missing=True to skip what is missing", "or pass --allow-missing to skip what is missing"),
        ("Use pad_to_32=True (--pad-to-32), which", "Use --pad-to-32, which"),
        ("layer='center' with pad_to_32=False needs", "--layer center with --no-pad-to-32 needs"),
        ("Use precision='fp32'.", "Use --precision fp32."),
        ("or pass task_root= (the per-task override)", "or pass --task-root (the per-task override)"),
        ("stft='fft' needs the Hann DFT", "stft='fft' needs the Hann DFT"),  # Python-only: left alone
        ("`backend` must be one of {'eager'}", "`--backend` must be one of {'eager'}"),
        ("(folder /d/esc50, chosen by data_root=/d (--data-root));", "(folder /d/esc50, chosen by --data-root /d);"),
        ("max_iter=100 in scikit-learn", "max_iter=100 in scikit-learn"),
    ],
)
def test_errors_shown_to_cli_users_spell_the_cli_options(python, cli):
    assert cli_spelling(python) == cli


def test_a_dataset_error_through_the_cli_names_cli_options(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIOSEP_DATA_ROOT", raising=False)
    result = CliRunner().invoke(evaluate_main, ["--task", "esc50", "--checkpoint", "random:0", "--heads", "logreg"])
    assert result.exit_code == 2 and "--data-root" in result.output, result.output
    assert "data_root=" not in result.output and "task_root=" not in result.output


def test_list_tasks_names_every_task_and_its_folder():
    from audiosep_kit.evaluate.tasks import TASKS

    result = CliRunner().invoke(evaluate_main, ["--list-tasks"])
    assert result.exit_code == 0
    for task in TASKS.values():
        assert task.name in result.output and f"{task.data_dir}/" in result.output
    assert "csv:PATH" in result.output and "folder:DIR" in result.output
    help_text = CliRunner().invoke(evaluate_main, ["--help"]).output
    assert "speechcommands-v2-12" in help_text.replace("\n", "").replace(" ", "")


def test_shell_completion_of_task_names():
    env = {"_AUDIOSEP_EVAL_COMPLETE": "bash_complete", "COMP_WORDS": "audiosep-eval --task esc", "COMP_CWORD": "2"}
    result = CliRunner().invoke(evaluate_main, [], env=env, prog_name="audiosep-eval")
    assert result.exit_code == 0
    assert result.output.split() == ["plain,esc50", "plain,esc10"]
    script = CliRunner().invoke(evaluate_main, [], env={"_AUDIOSEP_EVAL_COMPLETE": "bash_source"},
                                prog_name="audiosep-eval")  # fmt: skip
    assert "_audiosep_eval_completion" in script.output


def test_fast_means_fp32_unless_bf16_is_asked_for(tmp_path):
    clip = tmp_path / "a.wav"
    sf.write(clip, np.zeros(8000, np.float32), 32000)
    result = CliRunner().invoke(
        extract_main, [str(clip), "-o", str(tmp_path / "s"), "--checkpoint", "random:0", "--backend", "fast"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["precision"] == "fp32" and manifest["backend"] == "fast"
    result = CliRunner().invoke(
        extract_main,
        [str(clip), "-o", str(tmp_path / "t"), "--checkpoint", "random:0", "--backend", "fast", "--precision", "fp16"],
    )
    assert (
        result.exit_code == 2 and "`--precision (of backend 'fast')` must be one of {'fp32', 'bf16'}" in result.output
    )


@pytest.mark.parametrize(
    ("command", "given", "said"),
    [
        (evaluate_main, "eager,onnx", "several go in --backends eager,onnx"),
        (extract_main, "eager,onnx", "this command runs one at a time"),
        (extract_main, "fast:bf16", "a precision goes in --precision (--backend fast --precision bf16)"),
    ],
)
def test_a_list_given_to_backend_points_at_the_option_that_takes_it(command, given, said, tmp_path):
    result = CliRunner().invoke(command, [str(tmp_path), "--backend", given] if command is extract_main
                                else ["--task", "esc50", "--backend", given])  # fmt: skip
    assert result.exit_code == 2 and said in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("workers", "device", "expected"),
    [
        (0, "cpu", {"workers": 2, "processes": False}),
        (3, "cpu", {"workers": 3, "processes": True}),
        (None, "cpu", {"workers": 2, "processes": False}),
        (None, "cuda", None),  # every core but one, at least one process
    ],
)
def test_workers_map_to_decoding_processes_and_an_automatic_choice_is_said(workers, device, expected, capsys):
    from audiosep_kit.cli._options import decoding

    got = decoding(workers, device)
    if expected is None:
        assert got["processes"] is True and got["workers"] >= 1
    else:
        assert got == expected
    said = capsys.readouterr().err
    assert ("note: --workers" in said) == (workers is None), said


def test_workers_is_one_option_in_every_command_that_decodes():
    helps = {n: o.help for n, c in COMMANDS.items() if (o := _option(c, "--workers")) is not None}
    assert set(helps) == {"audiosep-extract", "audiosep-eval", "audiosep-bench"}
    assert len(set(helps.values())) == 1 and all(_option(COMMANDS[n], "--workers").default is None for n in helps)
