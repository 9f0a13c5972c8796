"""audiosep-eval --sweep: parsing of the axes, clear usage errors, and the dispatch to evaluate_sweep."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audiosep_kit.cli import _sweep as cli_sweep
from audiosep_kit.cli.evaluate import main
from audiosep_kit.evaluate import SweepEvaluation

ENV = {"AUDIOSEP_CHECKPOINT": "random:0"}


def _invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args], env=ENV, catch_exceptions=False)


@pytest.mark.parametrize(
    "sweeps, message",
    [
        (["depth=1,2"], "expected AXIS=V1,V2,... with AXIS one of film, layer, pooling; got 'depth=1,2'"),
        (["block1,block2"], "with AXIS one of film, layer, pooling; got 'block1,block2'"),
        (["layer=block1,block9"], "layer takes block1, block2, block3, block4, block5, block6, center; got 'block9'"),
        (["pooling=mean,frames"], "pooling takes mean, meanstd, max; got 'frames'"),
        (["film="], "film takes none, zero, query; got no value"),
        (["layer=block1", "pooling=max", "layer=center"], "axis 'layer' is given twice"),
    ],
)
def test_bad_sweeps_are_usage_errors_naming_the_choices(sweeps, message, tmp_path):
    args = ["--task", "esc50", "--data-root", tmp_path]
    result = _invoke([*args, *(item for s in sweeps for item in ("--sweep", s))])
    assert result.exit_code == 2 and "Invalid value for '--sweep'" in result.output
    assert message in " ".join(result.output.split())


@pytest.fixture
def seen(monkeypatch) -> dict:
    """evaluate_sweep and format_sweep replaced: what the CLI passed is recorded, nothing runs."""
    calls: dict = {}

    def fake(task, extraction, axes, config, **kw):
        calls.update(task=task, extraction=extraction, axes=axes, config=config, **kw)
        return SweepEvaluation({}, {}, {})

    monkeypatch.setattr(cli_sweep, "evaluate_sweep", fake)
    monkeypatch.setattr(cli_sweep, "format_sweep", lambda summary: "sweep table")
    return calls


def test_axes_not_swept_take_the_single_options(seen, tmp_path):
    args = ["--task", "esc50", "--data-root", tmp_path, "--heads", "logreg", "--out", tmp_path / "run"]
    result = _invoke([*args, "--sweep", "layer=center,block1", "--pooling", "max", "--film", "zero"])
    assert result.exit_code == 0, result.output
    axes = seen["axes"]
    assert axes.layers == ("block1", "center") and axes.poolings == ("max",) and axes.films == ("zero",)
    assert seen["baseline"] is False and seen["out_dir"] == tmp_path / "run" and "sweep table" in result.output


def test_every_axis_and_the_baseline(seen, tmp_path):
    sweeps = ["layer=block1,block2,block3,block4,block5,block6,center", "pooling=mean,meanstd,max", "film=none,zero"]
    args = ["--task", "esc50", "--data-root", tmp_path, "--sweep-baseline", "--cache-dir", tmp_path / "c"]
    result = _invoke([*args, *(item for s in sweeps for item in ("--sweep", s))])
    assert result.exit_code == 0, result.output
    assert len(seen["axes"].points()) == 42 and seen["baseline"] is True
    assert seen["cache_dir"] == tmp_path / "c" / "features"


def test_sweep_with_saved_features_is_a_usage_error(tmp_path):
    features = tmp_path / "f.pt"
    features.write_bytes(b"")
    result = _invoke(["--task", "esc50", "--features", features, "--sweep", "layer=block1"])
    assert result.exit_code == 2 and "--sweep extracts its own features; drop --features" in result.output


def test_sweep_on_another_backend_exits_2_with_the_reason(tmp_path):
    result = _invoke(["--task", "esc50", "--data-root", tmp_path, "--backend", "onnx", "--sweep", "layer=block1"])
    assert result.exit_code == 2
    assert "a sweep runs on the eager backend only" in result.output and "--backend eager" in result.output
