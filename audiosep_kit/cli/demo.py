"""`make demo`: the whole chain in one command, on real data when given, on generated data otherwise.

weights (checkpoint, else labelled ``random:0``) → ONNX export with verification → extraction through
the ONNX backend into the feature cache → heads trained with the official protocol → report, plus the
eager-versus-ONNX parity on a few clips. Everything lands under ``--out``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from audiosep_kit._validation import atomic_write_text
from audiosep_kit.audio import read_audio
from audiosep_kit.bench import run_parity
from audiosep_kit.cli._options import CommaList, report_errors
from audiosep_kit.evaluate import ExtractionConfig, RunConfig, evaluate_extracted, format_table, make_demo_dataset
from audiosep_kit.evaluate.tasks import load_examples
from audiosep_kit.export import export_onnx
from audiosep_kit.model import EncoderConfig, load_weights, resolve_checkpoint

__all__ = ["main", "run_demo"]


def _step(message: str) -> float:
    click.echo(f"\n== {message}")
    return time.perf_counter()


def _parity_clips(examples, limit: int = 6) -> dict:
    clips = {}
    for example in examples[:limit]:
        clips[Path(example.path).name] = read_audio(example.path, start_s=example.start_s, end_s=example.end_s).waveform
    return clips


def run_demo(out: Path, checkpoint: str, task: str, data_root: Path | None, heads: tuple[str, ...]) -> dict:
    """Run the chain and return a summary dict (also written to ``out/demo_summary.json``)."""
    out.mkdir(parents=True, exist_ok=True)
    if data_root is None:
        data_root = out / "data"
        if not (data_root / "speech_commands_v2").is_dir():
            make_demo_dataset(data_root)
        click.echo(f"generated a labelled demo set (Speech Commands layout) in {data_root}")
    weights = load_weights(checkpoint)
    if weights.is_random:
        click.echo(
            f"weights: {weights.source} — RANDOM weights (no checkpoint given); numbers show the pipeline "
            "works, not what AudioSep features are worth"
        )

    started = _step("export ONNX (dynamic batch and length), check and verify against eager")
    export = export_onnx(weights, EncoderConfig(), out / "encoder.onnx", sweep="quick")
    worst = export.report.get("worst", {})
    click.echo(
        f"{export.path}: verification {export.report.get('status')} (worst max_abs {worst.get('max_abs'):.2e}, "
        f"min cosine {worst.get('min_cosine'):.8f}; {time.perf_counter() - started:.1f} s)"
    )

    started = _step(f"extract through the onnx backend and evaluate task {task!r}")
    extraction = ExtractionConfig(checkpoint=checkpoint, backend="onnx", model_path=str(export.path))
    evaluation = evaluate_extracted(
        task, extraction, RunConfig(heads=heads, seeds=(0,)), data_root=data_root,
        cache_dir=out / "cache", out_dir=out / "report",
    )  # fmt: skip
    click.echo(format_table(evaluation.report))
    click.echo(f"({time.perf_counter() - started:.1f} s; run directory {out / 'report'})")

    _step("parity: eager (reference) versus onnx on real clips of the task")
    clips = _parity_clips(load_examples(task, data_root))
    _, parity = run_parity(
        weights, EncoderConfig(), clips, ["onnx"], options={"onnx": {"model_path": str(export.path)}}
    )
    summary = {
        "weights": weights.describe(),
        "onnx": str(export.path),
        "task": task,
        "heads": {
            h: {k: v for k, v in r.items() if k.endswith("_mean") or k.endswith("_std")}
            for h, r in evaluation.report["heads"].items()
        },
        "parity": [
            {
                "backend": p.backend,
                "precision": p.precision,
                "passed": p.passed,
                "providers": p.executed.get("providers"),
                **p.summary(),
            }
            for p in parity
        ],
    }
    for entry in summary["parity"]:
        click.echo(
            f"eager vs {entry['backend']} ({entry['precision']}, {entry['providers']}): "
            f"max_abs {entry['max_abs']:.2e}, "
            f"max_rel {entry['max_rel']:.2e}, min cosine {entry['min_cosine']:.8f}, "
            f"argmax agreement {entry['argmax_agreement']:.2f}, within tolerance: {entry['passed']}"
        )
    atomic_write_text(out / "demo_summary.json", json.dumps(summary, indent=2, default=str))
    return summary


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_out"), show_default=True)
@click.option(
    "--checkpoint", default=None, help="Checkpoint; default $AUDIOSEP_CHECKPOINT, pretrained_models/, else random:0."
)
@click.option(
    "--data-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Real data root (folders as in ../shared/data); default: a generated demo set.",
)
@click.option(
    "--task", default=None, help="Task to evaluate (default demo-words, or speechcommands-v2 with --data-root)."
)
@click.option("--heads", type=CommaList(str), default="linear,mlp3,logreg", show_default=True)
@report_errors
def main(out: Path, checkpoint: str | None, data_root: Path | None, task: str | None, heads: tuple[str, ...]) -> None:
    """Run the whole audiosep-kit chain end to end and print the report and parity."""
    checkpoint = checkpoint or resolve_checkpoint(None) or "random:0"
    task = task or ("speechcommands-v2" if data_root else "demo-words")
    run_demo(out, checkpoint, task, data_root, heads)


if __name__ == "__main__":  # pragma: no cover
    main()
