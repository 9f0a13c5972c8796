"""Measurement helpers: the spec's arithmetic, percentiles, peak, memory, inputs, the side-by-side runner.

No timing is asserted: only that numbers are computed from the right quantities and are sane.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from audiosep_kit import bench
from audiosep_kit.errors import BackendUnavailableError, ConfigError


@pytest.mark.parametrize(("seconds", "gmac"), [(1, 10.17), (4, 33.37), (5, 41.10), (10, 82.20)])
def test_encoder_macs_match_the_spec_table(seconds, gmac):
    assert bench.encoder_macs(seconds * 32_000) / 1e9 == pytest.approx(gmac, abs=0.005)


def test_long_clip_rate_and_taps():
    assert bench.gflop_per_audio_second(600 * 32_000) == pytest.approx(16.1, abs=0.05)  # spec: ≈ 16.1 GFLOP/s
    full = bench.encoder_macs(160_000)
    assert bench.encoder_macs(160_000, layer="block1") < bench.encoder_macs(160_000, layer="block5") < full
    assert bench.encoder_macs(160_000, pad_to_32=False) < full  # 501 frames instead of 512
    with pytest.raises(ConfigError, match="`layer` must be one of"):
        bench.encoder_macs(160_000, layer="block9")


def test_latency_summary_and_throughput():
    stats = bench.latency_summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["p50_s"] == 3.0 and stats["min_s"] == 1.0 and stats["repeats"] == 5
    assert stats["p50_s"] < stats["p90_s"] < stats["p99_s"] <= 100.0
    rates = bench.throughput(batch=8, num_samples=160_000, seconds=2.0)
    assert rates == {"clips_per_second": 4.0, "audio_seconds_per_second": 20.0, "real_time_factor": 0.05}
    with pytest.raises(ConfigError, match="at least one timing"):
        bench.latency_summary([])
    with pytest.raises(ConfigError, match="seconds > 0"):
        bench.throughput(1, 100, 0.0)


def test_time_calls_counts_warmup_and_repeats():
    calls = []
    seconds = bench.time_calls(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5 and len(seconds) == 3 and all(s >= 0 for s in seconds)
    with pytest.raises(ConfigError, match="`repeats` >= 1"):
        bench.time_calls(lambda: None, repeats=0)


def test_measure_peak_and_peak_memory():
    peak = bench.measure_peak("fp32", size=128, repeats=2)
    assert peak.best_gflops >= peak.median_gflops > 0 and peak.method in ("torch.mm", "oneDNN linear")
    with pytest.raises(ConfigError, match="`dtype` must be one of"):
        bench.measure_peak("int4")
    result, memory = bench.peak_rss_during(lambda: np.ones(4_000_000).sum())
    assert result == 4_000_000 and memory["peak_rss_mb"] > 30  # the 32 MB array was resident


def test_synthetic_clips_are_deterministic_and_distinct():
    a, b = bench.synthetic_clips(3, 4000), bench.synthetic_clips(3, 4000)
    assert a.shape == (3, 4000) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.allclose(a[0], a[1]) and np.all(np.abs(a) < 1)


def test_load_clips_loops_and_reuses_files(tmp_path):
    sf.write(tmp_path / "x.wav", np.full(8000, 0.1, np.float32), 16_000)  # 0.5 s
    clips, names = bench.load_clips(tmp_path, 40_000, 3)
    assert clips.shape == (3, 40_000) and names == ["x.wav"] * 3
    with pytest.raises(ConfigError, match="no audio files"):
        bench.load_clips(tmp_path / "empty", 100, 1)


def test_backend_spec_parsing():
    assert bench.BackendSpec.parse("fast") == bench.BackendSpec("fast", "fp32")  # reduced precision only when asked
    assert bench.BackendSpec.parse("fast:bf16").options() == {"precision": "bf16"}
    assert bench.BackendSpec.parse("onnx:fp16").options() == {"precision": "fp16"}
    assert bench.BackendSpec.parse("aoti").options() == {}  # one precision: no option to pass
    with pytest.raises(ConfigError, match=r"backend .fast. offers \[.fp32., .bf16.\]; got .fast:fp16."):
        bench.BackendSpec.parse("fast:fp16").options()


def test_backend_spec_options_are_checked_and_written_in_the_label():
    """A configured GPU variant: options parsed to values, part of the label, which parses back to it."""
    text = "onnx:fp16+tensorrt=true+trt_buckets_s=1/5/10+trt_max_batch=128"
    spec = bench.BackendSpec.parse(text)
    assert spec.label == text and bench.BackendSpec.parse(spec.label) == spec
    assert spec.options() == {
        "precision": "fp16",
        "tensorrt": True,
        "trt_buckets_s": (1.0, 5.0, 10.0),
        "trt_max_batch": 128,
    }
    assert bench.BackendSpec.parse("compile:bf16+mode=max-autotune").options() == {
        "precision": "bf16",
        "mode": "max-autotune",
    }
    with pytest.raises(ConfigError, match=r"backend 'fast' takes no option 'prefer_nhwc'.*backends \['onnx'\]"):
        bench.BackendSpec.parse("fast:bf16+prefer_nhwc=true")
    with pytest.raises(ConfigError, match=r"a backend option is written \+key=value; got 'nhwc'"):
        bench.BackendSpec.parse("onnx+nhwc")


@pytest.fixture(scope="module")
def weights():
    from audiosep_kit.model._checkpoint import load_weights

    return load_weights("random:0")


def test_run_bench_rows(weights):
    from audiosep_kit.model._config import EncoderConfig

    specs = [bench.BackendSpec.parse("fast:fp32")]
    rows, skipped = bench.run_bench(
        weights,
        EncoderConfig(),
        specs,
        batch_sizes=(1, 2),
        durations=(0.1,),
        repeats=1,
        quality_clips=2,
        peaks={"fp32": bench.Peak("fp32", 64, 100.0, 90.0, 2)},
    )
    assert not skipped and [(r["label"], r["batch"]) for r in rows] == [
        ("eager:fp32", 1),
        ("eager:fp32", 2),
        ("fast:fp32", 1),
        ("fast:fp32", 2),
    ]
    for row in rows:
        assert row["samples"] == 3200 and row["weights"]["random_weights"] is True
        assert row["percent_of_peak"] == pytest.approx(row["achieved_gflops"])  # peak given as 100 GFLOP/s
        assert row["p50_s"] > 0 and row["audio_seconds_per_second"] > 0 and row["first_call_s"] > 0
    assert rows[0]["speedup_vs_eager"] == 1.0 and rows[0]["cosine_vs_fp32"] == 1.0
    assert rows[2]["cosine_vs_fp32"] > 0.99999


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_run_bench_on_missing_cuda_is_refused_before_building(weights):
    """Not a KeyError for the skipped eager reference: the device is refused, with the fix."""
    from audiosep_kit.model._config import EncoderConfig

    with pytest.raises(BackendUnavailableError, match=r"device 'cuda' was requested .* use --device cpu"):
        bench.run_bench(weights, EncoderConfig(), [], batch_sizes=(1,), durations=(0.1,), repeats=1, device="cuda")


def test_percent_of_peak_only_for_rows_that_ran_on_the_cpu(weights, monkeypatch):
    """The peaks are CPU matmul peaks: a backend that reports another device gets none."""
    from audiosep_kit.model._config import EncoderConfig
    from audiosep_kit.runtime.backends import BACKENDS, BackendEntry
    from audiosep_kit.runtime.backends._eager import make_eager

    class _Elsewhere:
        name, precision = "elsewhere", "fp32"

        def __init__(self, inner):
            self.inner = inner

        def run(self, batch):
            return self.inner.run(batch)

        def executed(self):
            return {**self.inner.executed(), "device": "cuda:0"}

    monkeypatch.setitem(BACKENDS, "elsewhere", BackendEntry(lambda w, c, d, **o: _Elsewhere(make_eager(w, c, d))))
    rows, _ = bench.run_bench(
        weights,
        EncoderConfig(layer="block1"),
        [bench.BackendSpec.parse("elsewhere")],
        batch_sizes=(1,),
        durations=(0.1,),
        repeats=1,
        quality_clips=1,
        peaks={"fp32": bench.Peak("fp32", 64, 100.0, 90.0, 2)},
    )
    percent = {r["label"]: r["percent_of_peak"] for r in rows}
    assert percent["elsewhere:fp32"] is None and percent["eager:fp32"] is not None


def test_run_bench_refuses_unknown_backend(weights):
    from audiosep_kit.model._config import EncoderConfig

    with pytest.raises(ConfigError, match="`backend` must be one of"):
        bench.run_bench(
            weights,
            EncoderConfig(),
            [bench.BackendSpec.parse("tensorflow")],
            batch_sizes=(1,),
            durations=(0.1,),
            repeats=1,
            quality_clips=1,
        )


def test_end_to_end_reports_both_throughputs(weights, tmp_path):
    from audiosep_kit.model._config import EncoderConfig
    from audiosep_kit.runtime._extractor import FeatureExtractor
    from audiosep_kit.runtime.backends import make_backend

    for i in range(3):
        sf.write(
            tmp_path / f"c{i}.wav", (0.1 * np.random.default_rng(i).standard_normal(8000)).astype(np.float32), 16_000
        )
    config = EncoderConfig()
    extractor = FeatureExtractor(make_backend("fast", weights, config, precision="fp32"), weights, config, batch_size=4)
    report = bench.end_to_end(extractor, sorted(tmp_path.glob("*.wav")), tmp_path / "store", repeats=1)
    assert report["files"] == 3 and report["failed_files"] == 0 and report["audio_seconds"] == pytest.approx(1.5)
    assert report["end_to_end_fraction_of_model_only"] > 0 and report["precision"] == "fp32"
    assert (tmp_path / "store" / "features.npy").is_file()
