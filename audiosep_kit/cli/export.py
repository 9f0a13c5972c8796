"""audiosep-export: ONNX and AOTInductor exports (verified before they are kept), parity, inspection.

    audiosep-export onnx   --checkpoint CKPT -o encoder.onnx [--fp16] [--sweep quick|full]
    audiosep-export aoti   --checkpoint CKPT -o encoder.pt2
    audiosep-export parity --golden --backends eager,compile,onnx,aoti --json parity.json
    audiosep-export inspect encoder.onnx

Exit status: 0 when everything passed; 1 when an export failed verification or a backend missed its
tolerance (the details are printed and, for exports, kept in ``<stem>.failed.verify.json``); 2 for
usage and configuration errors (a requested backend or device that is unavailable included).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from audiosep_kit._tables import format_table
from audiosep_kit._validation import atomic_write_text
from audiosep_kit.audio import audio_files, read_audio
from audiosep_kit.bench import golden_clips, run_parity, synthetic_parity_clips
from audiosep_kit.cli._logging import setup_progress
from audiosep_kit.cli._options import (
    backends_option,
    cache_option,
    checkpoint_option,
    device_option,
    encoder_options,
    output_option,
    precision_option,
    progress_option,
    report_errors,
    require_checkpoint,
)
from audiosep_kit.errors import BackendUnavailableError, ConfigError, VerificationError
from audiosep_kit.export import ONNX_PRECISIONS, export_aoti, export_onnx, read_metadata
from audiosep_kit.model import EncoderConfig, load_weights
from audiosep_kit.numerics import PRECISIONS
from audiosep_kit.runtime import backend_variants, read_condition

__all__ = ["main", "GOLDEN_ENV", "default_golden_dir"]

GOLDEN_ENV = "AUDIOSEP_GOLDEN"
_CONTEXT = {"help_option_names": ["-h", "--help"]}


def default_golden_dir() -> Path:
    """$AUDIOSEP_GOLDEN, else ``<repo>/../shared/audiosep/golden`` (the shared conformance set)."""
    env = os.environ.get(GOLDEN_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "audiosep" / "golden"


def _load(checkpoint, trust_checkpoint, film, condition, layer, pooling, pad_to_32):
    config = EncoderConfig(
        film=film, layer=layer, pooling=pooling, pad_to_32=pad_to_32, condition=read_condition(condition)
    )
    weights = load_weights(require_checkpoint(checkpoint), trust_pickle=trust_checkpoint)
    if weights.is_random:
        click.echo(f"note: {weights.source} weights are RANDOM (smoke run); the artifact metadata says so.", err=True)
    return weights, config


def _fail_verification(exc: Exception) -> None:
    click.echo(f"verification failed: {exc}", err=True)
    sys.exit(1)


def _echo_export(result) -> None:
    report = result.report
    worst = report.get("worst") or {}
    click.echo(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB), report {result.report_path}")
    if report.get("status") == "passed":
        click.echo(
            f"verified vs eager on {len(report['cases'])} cases: max abs {worst['max_abs']:.3g}, "
            f"max rel {worst['max_rel']:.3g}, min cosine {worst['min_cosine']:.9f}"
        )
    else:
        click.echo(f"verification {report.get('status')}: {report.get('reason', '')}")
    click.echo("timings: " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))


@click.group(context_settings=_CONTEXT)
def main() -> None:
    """Export the AudioSep encoder (ONNX, AOTInductor) and check backend parity."""


def _export_options(fn):
    fn = click.option(
        "--sweep",
        type=click.Choice(["quick", "full"]),
        default="full",
        show_default=True,
        help="Verification lengths: quick = 1025, 0.5 s, 1 s, 3.3 s; full adds 5, 10 and 30 s.",
    )(fn)
    fn = click.option(
        "--verify/--no-verify",
        default=True,
        show_default=True,
        help="Verify against eager before keeping the artifact.",
    )(fn)
    return fn


@main.command("onnx", context_settings=_CONTEXT)
@output_option(required=True, dir_okay=False, help="Target .onnx file.")
@checkpoint_option
@encoder_options
@click.option("--opset", type=click.IntRange(min=17), default=18, show_default=True, help="ONNX opset (>= 17).")
@precision_option(
    ONNX_PRECISIONS, "fp16: blocks in float16 (the front end stays float32), verified by cosine >= 0.999."
)
@click.option(
    "--save-optimized",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save ONNX Runtime's optimised graph (level 'extended') here.",
)
@_export_options
@progress_option
@report_errors
def onnx_command(
    out,
    checkpoint,
    trust_checkpoint,
    film,
    condition,
    layer,
    pooling,
    pad_to_32,
    opset,
    precision,
    save_optimized,
    verify,
    sweep,
    progress,
) -> None:
    """Export to ONNX (dynamic batch and samples), check, verify against eager, then keep."""
    setup_progress(progress)
    weights, config = _load(checkpoint, trust_checkpoint, film, condition, layer, pooling, pad_to_32)
    try:
        result = export_onnx(
            weights,
            config,
            out,
            opset=opset,
            precision=precision,
            verify=verify,
            sweep=sweep,
            save_optimized=save_optimized,
        )
    except VerificationError as exc:
        _fail_verification(exc)
    _echo_export(result)
    if save_optimized is not None:
        click.echo(f"optimised graph: {save_optimized}")


@main.command("aoti", context_settings=_CONTEXT)
@output_option(required=True, dir_okay=False, help="Target .pt2 file.")
@checkpoint_option
@encoder_options
@device_option("Device to compile for: cpu, cuda or cuda:N.")
@_export_options
@progress_option
@report_errors
def aoti_command(
    out, checkpoint, trust_checkpoint, film, condition, layer, pooling, pad_to_32, device, verify, sweep, progress
) -> None:
    """Package with torch.export + AOTInductor (C++ compile: minutes), verify, then keep."""
    setup_progress(progress)
    weights, config = _load(checkpoint, trust_checkpoint, film, condition, layer, pooling, pad_to_32)
    try:
        result = export_aoti(weights, config, out, device=device, verify=verify, sweep=sweep)
    except VerificationError as exc:
        _fail_verification(exc)
    _echo_export(result)


def _collect_clips(clips: tuple[Path, ...], golden: bool, golden_dir: Path | None) -> dict:
    """Golden inputs (--golden), files and folders given; with none of them, synthetic clips."""
    found: dict = {}
    if golden:
        found.update({f"golden:{k}": v for k, v in golden_clips(golden_dir or default_golden_dir()).items()})
    for item in clips:
        files = audio_files(item) if item.is_dir() else [item]
        found.update({str(p): read_audio(p).waveform for p in files})
    if clips and not found:
        raise ConfigError(f"no audio files in {[str(c) for c in clips]} (give audio files or folders, or --golden).")
    if not found:
        found = synthetic_parity_clips()
        click.echo(
            f"note: no clips given; using {len(found)} synthetic chirp-plus-noise clips "
            f"({', '.join(k.split(':')[1] for k in found)} samples).",
            err=True,
        )
    return found


def _backend_list(backends: tuple[str, ...] | None) -> tuple[list[str], bool]:
    """Every registered backend x precision but eager fp32 (the reference) by default; an explicit list
    (already checked by the --backends option) is taken as given."""
    if backends is None:
        return [f"{n}:{p}" for n, p in backend_variants() if (n, p) != ("eager", "fp32")], False
    return list(backends), True


def _echo_parity(results) -> None:
    rows = []
    for r in results:
        s = r.summary()
        verdict = (
            f"skipped: {r.skipped}"
            if r.skipped is not None
            else f"{'pass' if r.passed else 'FAIL'} ({r.seconds:.1f} s)"
        )
        rows.append(
            [
                r.backend,
                r.precision,
                s.get("max_abs"),
                s.get("max_rel"),
                s.get("min_cosine"),
                None if s.get("argmax_agreement") is None else 100 * s["argmax_agreement"],
                verdict,
            ]
        )
    headers = ["backend", "prec", "max abs", "max rel", "min cos", "argmax %", "verdict"]
    click.echo(format_table(rows, headers, formats=["", "", ".3g", ".3g", ".9f", ".1f", ""]))


@main.command("parity", context_settings=_CONTEXT)
@click.argument("clips", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--golden", is_flag=True, help="Add the golden inputs a..e (and default to the golden checkpoint).")
@click.option(
    "--golden-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help=f"Golden set folder. Default: ${GOLDEN_ENV}, then <repo>/../shared/audiosep/golden.",
)
@checkpoint_option
@encoder_options
@backends_option(None, "Backends to compare with eager fp32 (default: every registered backend x precision).")
@device_option("Device of the backends (the eager reference runs on cpu).")
@click.option(
    "--onnx-model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Exported .onnx for the onnx backend (default: export into the cache); its precision must be the "
    "--backends entry's (onnx:fp16 for an fp16 export).",
)
@click.option(
    "--aoti-package",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Exported .pt2 for the aoti backend (default: compile into the cache, minutes).",
)
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True, help="Equal-length clips per run.")
@output_option(required=False, dir_okay=False, json_alias=True, help="Save the report (JSON).")
@cache_option
@progress_option
@report_errors
def parity_command(
    clips,
    golden,
    golden_dir,
    checkpoint,
    trust_checkpoint,
    film,
    condition,
    layer,
    pooling,
    pad_to_32,
    backends,
    device,
    onnx_model,
    aoti_package,
    batch_size,
    out,
    cache_dir,
    progress,
) -> None:
    """Run the same clips through each backend and compare with eager (CPU, float32).

    Without clips or --golden, synthetic clips are used. Tolerances: audiosep_kit.numerics.PRECISIONS
    (fp32: max|d| <= 1e-5 + 1e-4 * max|eager|; fp16 and bf16: cosine >= 0.999).
    """
    setup_progress(progress)
    found = _collect_clips(clips, golden, golden_dir)
    if golden and checkpoint is None:
        checkpoint = str((golden_dir or default_golden_dir()) / "checkpoint.ckpt")
    weights, config = _load(checkpoint, trust_checkpoint, film, condition, layer, pooling, pad_to_32)
    names, explicit = _backend_list(backends)
    options: dict[str, dict] = {name: {"cache_dir": cache_dir} for name in ("onnx", "aoti") if cache_dir is not None}
    if onnx_model is not None:
        options["onnx"] = {"model_path": onnx_model}
    if aoti_package is not None:
        options["aoti"] = {"model_path": aoti_package}
    elif any(label.startswith("aoti:") for label in names):
        click.echo("note: aoti without --aoti-package compiles a package into the cache (minutes).", err=True)
    _, results = run_parity(weights, config, found, names, device=device, options=options, batch_size=batch_size)
    _echo_parity(results)
    if out is not None:
        payload = {
            "format_version": 1,
            "clips": {k: len(v) for k, v in found.items()},
            "device": device,
            "tolerances": {k: vars(p.tolerance) for k, p in PRECISIONS.items()},
            "weights": weights.describe(),
            "encoder": config.to_dict(),
            "backends": [r.to_dict() for r in results],
        }
        atomic_write_text(out, json.dumps(payload, indent=2, default=str) + "\n")
    skipped = [r for r in results if r.skipped is not None]
    if skipped and (explicit or len(skipped) == len(results)):  # nothing compared is no pass on --device
        raise BackendUnavailableError(
            f"not run on --device {device}: " + "; ".join(f"{r.backend}: {r.skipped}" for r in skipped)
        )
    if any(r.passed is False for r in results):
        sys.exit(1)


@main.command("inspect", context_settings=_CONTEXT)
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@report_errors
def inspect_command(artifact: Path) -> None:
    """Print the metadata stored in an exported .onnx or .pt2."""
    click.echo(json.dumps(read_metadata(artifact), indent=2, sort_keys=True))


if __name__ == "__main__":  # pragma: no cover - `python -m audiosep_kit.cli.export`
    main()
