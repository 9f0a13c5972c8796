"""audiosep-bench: backends measured side by side in one process, with ratios against eager fp32.

Why one process and interleaved repeats: on a shared machine the load changes from minute to minute;
running every backend once per round, round after round, exposes them to the same conditions, and
medians (p50) discard the disturbed rounds. Cold costs (export, session creation, first call, which
includes torch.compile) are reported apart from warm latency.
"""

from __future__ import annotations

import json
import platform
import tempfile
from pathlib import Path

import click
import torch

from audiosep_kit._tables import format_table as render_table
from audiosep_kit._validation import atomic_write_text
from audiosep_kit.audio import audio_files
from audiosep_kit.bench import BackendSpec, encoder_macs, end_to_end, gflop_per_audio_second, measure_peak, run_bench
from audiosep_kit.cli._logging import setup_progress
from audiosep_kit.cli._options import (
    BackendList,
    CommaList,
    DeviceType,
    backends_option,
    cache_option,
    decoding,
    device_option,
    encoder_options,
    output_option,
    progress_option,
    report_errors,
    workers_option,
)
from audiosep_kit.model import EncoderConfig, load_weights
from audiosep_kit.runtime import FeatureExtractor, make_backend, read_condition

__all__ = ["main"]

FORMAT_VERSION = 1
DEFAULT_BACKENDS = "eager,onnx,fast:fp32,fast:bf16"


#: (header, format spec, value of a row) of the bench table, in column order.
_COLUMNS = (
    ("backend", "", lambda r: r["label"]),
    ("batch", "d", lambda r: r["batch"]),
    ("dur s", ".2f", lambda r: r["duration_s"]),
    ("p50 ms", ".1f", lambda r: 1e3 * r["p50_s"]),
    ("p90 ms", ".1f", lambda r: 1e3 * r["p90_s"]),
    ("audio s/s", ".2f", lambda r: r["audio_seconds_per_second"]),
    ("x eager", ".2f", lambda r: r["speedup_vs_eager"]),
    ("cos fp32", ".6f", lambda r: r["cosine_vs_fp32"]),
    ("GFLOP/s", ".1f", lambda r: r["achieved_gflops"]),
    ("% peak", ".1f", lambda r: r["percent_of_peak"]),
    ("build s", ".1f", lambda r: (r["export_s"] or 0.0) + r["build_s"]),
    ("1st s", ".2f", lambda r: r["first_call_s"]),
    ("RSS MB", ".0f", lambda r: r["peak_rss_mb"]),
)


def format_table(rows: list[dict]) -> str:
    """Plain-text table, one line per backend x batch x duration."""
    return render_table(
        [[value(r) for _, _, value in _COLUMNS] for r in rows],
        [head for head, _, _ in _COLUMNS],
        formats=[spec for _, spec, _ in _COLUMNS],
    )


def _arithmetic(durations: list[float], config) -> str:
    parts = []
    for d in durations:
        samples = int(round(d * 32_000))
        macs = encoder_macs(samples, layer=config.layer, pad_to_32=config.pad_to_32)
        parts.append(
            f"{d:g} s clip: {macs / 1e9:.2f} GMAC = {2 * macs / 1e9:.1f} GFLOP "
            f"({gflop_per_audio_second(samples, layer=config.layer, pad_to_32=config.pad_to_32):.2f} GFLOP per audio s)"
        )
    return "encoder arithmetic (ENCODER_SPEC §5.2): " + "; ".join(parts)


def _peaks(enabled: bool, size: int) -> dict:
    if not enabled:
        return {}
    return {dtype: measure_peak(dtype, size=size) for dtype in ("fp32", "bf16")}


def _end_to_end(
    folder: Path, spec_text: str, weights, config, device: str, batch: int, cache_dir, workers: int | None
) -> dict:
    spec = BackendSpec.parse(spec_text)
    options = {"cache_dir": cache_dir} if cache_dir is not None and spec.name in ("onnx", "aoti") else {}
    engine = make_backend(spec.name, weights, config, device, **options, **spec.options())
    extractor = FeatureExtractor(engine, weights, config, batch_size=batch)
    with tempfile.TemporaryDirectory(prefix="audiosep-bench-") as tmp:
        return {
            "kind": "end_to_end",
            "folder": str(folder),
            **end_to_end(extractor, audio_files(folder), Path(tmp) / "store", **decoding(workers, device)),
        }


def _machine(peaks: dict) -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "peaks": {k: vars(v) for k, v in peaks.items()},
    }


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@backends_option(
    DEFAULT_BACKENDS, "Backends measured side by side (eager fp32, the reference, always runs).", configured=True
)
@click.option("--batch-sizes", type=CommaList(int, positive=True), default="1,8", show_default=True)
@click.option(
    "--durations",
    type=CommaList(float, positive=True),
    default="1,5",
    show_default=True,
    help="Clip lengths in seconds.",
)
@click.option("--threads", type=click.IntRange(1), default=None, help="torch (and ORT intra-op) threads.")
@device_option()
@click.option(
    "--reference-device",
    type=DeviceType(),
    default=None,
    help="Device of the eager fp32 features the cosines compare with (default: --device; cpu for GPU runs).",
)
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True, help="Interleaved timed rounds.")
@click.option("--warmup", type=click.IntRange(1), default=1, show_default=True, help="Untimed calls per shape.")
@click.option(
    "--checkpoint", default="random:0", show_default=True, help="Weights; random:SEED is labelled random in every row."
)
@encoder_options
@click.option(
    "--clips",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of real clips for inputs and cosine (else deterministic noise + tones).",
)
@click.option("--quality-clips", type=click.IntRange(1), default=8, show_default=True)
@click.option("--peak/--no-peak", default=True, show_default=True, help="Measure the matmul peak (fp32, bf16).")
@click.option("--peak-size", type=click.IntRange(64, 4096), default=2048, show_default=True)
@click.option(
    "--end-to-end",
    "e2e_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Also time audiosep-extract's pipeline over this folder against the model alone.",
)
@click.option(
    "--e2e-backend",
    type=BackendList(),
    default="fast:bf16",
    show_default=True,
    help="Backend (name[:precision]) of the --end-to-end run.",
)
@click.option("--e2e-batch-size", type=click.IntRange(1), default=8, show_default=True)
@workers_option
@output_option(required=False, dir_okay=False, json_alias=True, help="Write the rows (a JSON list) here.")
@cache_option
@progress_option
@report_errors
def main(
    backends,
    batch_sizes,
    durations,
    threads,
    device,
    reference_device,
    repeats,
    warmup,
    checkpoint,
    film,
    condition,
    layer,
    pooling,
    pad_to_32,
    clips,
    quality_clips,
    peak,
    peak_size,
    e2e_dir,
    e2e_backend,
    e2e_batch_size,
    workers,
    out,
    cache_dir,
    progress,
) -> None:
    """Measure backends side by side; print a table with speed-ups and cosines against eager fp32."""
    setup_progress(progress)
    if threads:
        torch.set_num_threads(threads)
    specs = [BackendSpec.parse(label) for label in backends]
    sizes, lengths = list(batch_sizes), list(durations)
    config = EncoderConfig(
        film=film, condition=read_condition(condition), layer=layer, pooling=pooling, pad_to_32=pad_to_32
    )
    weights = load_weights(checkpoint)
    if weights.is_random:
        click.echo(f"note: {weights.source} weights are RANDOM (official-style init); quality numbers describe them.")
    peaks = _peaks(peak, peak_size)
    for p in peaks.values():
        click.echo(
            f"machine peak {p.dtype}: {p.best_gflops:.0f} GFLOP/s best, {p.median_gflops:.0f} median "
            f"({p.method} {p.size}x{p.size}, {p.threads} threads)"
        )
    click.echo(_arithmetic(lengths, config))
    rows, skipped = run_bench(
        weights,
        config,
        specs,
        batch_sizes=sizes,
        durations=lengths,
        repeats=repeats,
        warmup=warmup,
        device=device,
        clips_dir=clips,
        quality_clips=quality_clips,
        peaks=peaks,
        cache_dir=cache_dir,
        reference_device=reference_device,
    )
    click.echo(
        f"inputs: {'real clips from ' + str(clips) if clips else 'deterministic noise + tones'}; "
        f"cosine = min over {quality_clips} clips vs eager fp32 on {reference_device or device}; "
        f"{repeats} interleaved rounds, p50 reported"
    )
    click.echo(format_table(rows))
    for label, reason in skipped.items():
        click.echo(f"skipped {label}: {reason}")
    machine = _machine(peaks)
    rows_out = [{"format_version": FORMAT_VERSION, "kind": "latency", **r, "machine": machine} for r in rows]
    if e2e_dir is not None:
        e2e = _end_to_end(e2e_dir, e2e_backend[0], weights, config, device, e2e_batch_size, cache_dir, workers)
        click.echo(
            f"end-to-end ({e2e['backend']}:{e2e['precision']}, {e2e['files']} files, {e2e['audio_seconds']:.1f} s "
            f"of audio): pipeline {e2e['end_to_end_audio_seconds_per_second']:.2f} audio s/s vs model only "
            f"{e2e['model_only_audio_seconds_per_second']:.2f} = {100 * e2e['end_to_end_fraction_of_model_only']:.1f} %"
        )
        rows_out.append({"format_version": FORMAT_VERSION, **e2e, "machine": machine})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(rows_out, indent=2, default=str))
        click.echo(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover - `python -m audiosep_kit.cli.bench`
    main()
