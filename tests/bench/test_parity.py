"""Parity: comparison numbers, documented tolerances, and run_parity over registered backends."""

from __future__ import annotations

import numpy as np
import pytest

from audiosep_kit.bench import golden_clips, run_parity
from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.model._config import EncoderConfig
from audiosep_kit.numerics import PRECISIONS, Tolerance, compare, tolerance_for
from audiosep_kit.runtime.backends import BACKENDS, BackendEntry, backend_names, backend_variants


def test_documented_tolerances():
    assert tolerance_for("fp32") == Tolerance(rtol=1e-4, atol=1e-5)
    assert tolerance_for("fp16") == Tolerance(min_cosine=0.999)


def test_tolerance_must_bound_something():
    with pytest.raises(ConfigError, match=r"must bound something"):
        Tolerance()
    with pytest.raises(ConfigError, match=r"rtol and atol go together"):
        Tolerance(rtol=1e-4)
    with pytest.raises(ConfigError, match=r"`precision` must be one of .*got 'int4'"):
        tolerance_for("int4")


def test_every_precision_a_backend_offers_has_a_tolerance():
    """The numerics table covers the registry: bf16 (fast's default) is bounded like fp16, int8 is reserved."""
    for _name, precision in backend_variants():
        assert tolerance_for(precision) == PRECISIONS[precision].tolerance
    assert tolerance_for("bf16") == Tolerance(min_cosine=0.999)
    assert PRECISIONS["int8"].placeholder and not PRECISIONS["bf16"].placeholder


def test_compare_numbers():
    ref = np.array([[1.0, -2.0, 0.5], [0.0, 4.0, 1.0]], np.float32)
    got = ref + np.array([[0.0, 0.001, 0.0], [0.0, 0.0, -0.002]], np.float32)
    cmp = compare(got, ref)
    assert cmp.scale == 4.0 and cmp.max_abs == pytest.approx(0.002, rel=1e-4)
    assert cmp.max_rel == pytest.approx(0.0005, rel=1e-4) and cmp.argmax_agreement == 1.0
    assert 0.9999 < cmp.min_cosine < 1.0
    assert not cmp.within(tolerance_for("fp32")) and cmp.within(tolerance_for("fp16"))


def test_compare_flags_shape_mismatch():
    cmp = compare(np.zeros((1, 3)), np.zeros((1, 4)))
    assert cmp.shape_got == (1, 3) and not cmp.within(tolerance_for("fp16"))


def test_argmax_agreement_counts_rows():
    ref = np.array([[0, 1.0], [1.0, 0]])
    assert compare(np.array([[0, 1.0], [0, 1.0]]), ref).argmax_agreement == 0.5


class _Scaled:
    """A stand-in backend: eager's numbers times ``factor``."""

    def __init__(self, inner, factor: float, precision: str = "fp32"):
        self.inner, self.factor, self.precision, self.name = inner, factor, precision, "scaled"

    def run(self, batch):
        return self.inner.run(batch) * self.factor

    def executed(self):
        return {"device": "cpu", "factor": self.factor}


@pytest.fixture
def stand_ins(monkeypatch):
    from audiosep_kit.runtime.backends._eager import make_eager

    backend_names()  # load the built-in backends before adding ours
    monkeypatch.setitem(BACKENDS, "exact", BackendEntry(lambda w, c, d, **o: _Scaled(make_eager(w, c, d), 1.0)))
    monkeypatch.setitem(BACKENDS, "off", BackendEntry(lambda w, c, d, **o: _Scaled(make_eager(w, c, d), 1.01)))

    def unavailable(w, c, d, **o):
        raise BackendUnavailableError("no such accelerator here")

    monkeypatch.setitem(BACKENDS, "absent", BackendEntry(unavailable))


def test_run_parity_passes_fails_and_skips_explicitly(stand_ins, random_weights):
    clips = {
        "short": np.sin(np.arange(1025) / 9).astype(np.float32),
        "long": np.cos(np.arange(4000) / 7).astype(np.float32),
    }
    config = EncoderConfig(layer="block1")
    reference, results = run_parity(random_weights, config, clips, ["eager", "exact", "off", "absent"])
    by_name = {r.backend: r for r in results}
    assert set(reference) == set(clips) and set(by_name) == {"exact", "off", "absent"}
    assert by_name["exact"].passed is True and by_name["exact"].summary()["max_abs"] == 0
    assert by_name["off"].passed is False and by_name["off"].summary()["max_rel"] == pytest.approx(0.01, rel=1e-3)
    assert by_name["absent"].passed is None and "no such accelerator" in by_name["absent"].skipped
    assert by_name["exact"].to_dict()["executed"] == {"device": "cpu", "factor": 1.0}


def test_golden_clips_reads_a_to_e(golden_dir):
    clips = golden_clips(golden_dir)
    assert list(clips) == ["a", "b", "c", "d", "e"] and clips["d"].shape == (1025,)


def test_golden_clips_names_the_missing_folder(tmp_path):
    with pytest.raises(
        ConfigError, match=r"golden inputs not found: .*inputs\.npz \(set --golden-dir or AUDIOSEP_GOLDEN\)"
    ):
        golden_clips(tmp_path)
