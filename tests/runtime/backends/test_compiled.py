"""The compile backend: golden block1 tap (fast: a small graph), bounded recompiles, option checks."""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.errors import ConfigError


@pytest.fixture(scope="module")
def block1_compiled(golden_backend):
    """FiLM none, layer block1, pooling none: the (B, 32, Tp/2, 512) map, golden in outputs_taps."""
    return golden_backend("compile", "none", "none", "block1")


def test_block1_tap_matches_golden(block1_compiled, golden_inputs, golden_taps, golden_check):
    for clip in ("a", "c", "d"):
        got = block1_compiled.run(golden_inputs[clip][None])
        golden_check(got, golden_taps[f"{clip}__none__block1"], f"compile:{clip}__none__block1", "compile")


def test_block1_batch3_matches_golden(block1_compiled, golden_inputs, golden_taps, golden_check):
    batch = np.stack([golden_inputs["a"]] * 3)
    ref = np.concatenate([golden_taps["a__none__block1"]] * 3)
    golden_check(block1_compiled.run(batch), ref, "compile:batch3__none__block1", "compile")


def test_executed_reports_mode_and_bounded_recompiles(block1_compiled, golden_inputs):
    block1_compiled.run(golden_inputs["a"][None])
    info = block1_compiled.executed()
    assert info["compiler"] == "inductor" and info["compile_mode"] == "default" and info["dynamic"] is True
    # {batch 1, batch > 1} x {lengths}: dynamic shapes keep the graph count far below the shape count.
    assert 1 <= info["graphs_compiled"] <= info["recompile_limit"]
    assert info["recompiles"] == info["graphs_compiled"] - 1


def test_unknown_mode_is_refused():
    from audiosep_kit.model._config import EncoderConfig
    from audiosep_kit.runtime.backends import make_backend

    with pytest.raises(ConfigError, match=r"`mode` must be one of .*got 'fast'"):
        make_backend("compile", None, EncoderConfig(), "cpu", mode="fast")


def test_bad_recompile_limit_is_refused():
    from audiosep_kit.model._config import EncoderConfig
    from audiosep_kit.runtime.backends import make_backend

    with pytest.raises(ConfigError, match=r"`recompile_limit` must be a positive integer; got 0"):
        make_backend("compile", None, EncoderConfig(), "cpu", recompile_limit=0)


def test_graphs_past_the_limit_raise_instead_of_growing(monkeypatch):
    """The per-backend bound, checked with a stand-in callable that 'compiles' on every call."""
    import torch

    import audiosep_kit.runtime.backends._compiled as compiled
    from audiosep_kit.errors import BackendUnavailableError

    graphs = iter(range(100))
    monkeypatch.setattr(compiled, "_graph_count", lambda: next(graphs))
    backend = compiled.CompiledBackend(
        lambda x: x.sum(dim=1, keepdim=True), torch.device("cpu"), mode="default", recompile_limit=1
    )
    backend.run(np.ones((1, 1025), np.float32))  # counter 0 -> 1: one graph
    assert backend.executed()["graphs_compiled"] == 1
    with pytest.raises(BackendUnavailableError, match=r"built 2 graphs for 2 input shapes, over its recompile_limit=1"):
        backend.run(np.ones((2, 1025), np.float32))  # counter 2 -> 3: a second graph
