"""audiosep-extract: files, folders or a file list -> a resumable feature store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from audiosep_kit.audio import DEFAULT_MAX_SECONDS, audio_files
from audiosep_kit.cli._options import (
    backend_option,
    checkpoint_option,
    device_option,
    encoder_options,
    model_path_option,
    report_errors,
    require_checkpoint,
)
from audiosep_kit.errors import ConfigError
from audiosep_kit.features import extract_to_store
from audiosep_kit.runtime import FeatureExtractor

__all__ = ["main"]


def collect_inputs(inputs: tuple[Path, ...], file_list: Path | None) -> list[Path]:
    """Files as given, folders walked recursively (sorted, audio extensions only), plus a list file."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(sorted(p.resolve() for p in audio_files(item)))
        else:
            found.append(item.resolve())
    if file_list is not None:
        lines = file_list.read_text(encoding="utf-8").splitlines()
        found.extend(Path(line.strip()) for line in lines if line.strip() and not line.startswith("#"))
    if not found:
        raise ConfigError("no input audio: give files, folders (searched recursively) or --file-list FILE.")
    return found


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Store folder.")
@click.option(
    "--file-list", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Text file, one path a line."
)
@checkpoint_option
@backend_option
@device_option()
@model_path_option
@encoder_options
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--chunk-size", default=64, show_default=True, type=click.IntRange(1), help="Files per committed chunk.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="Decoding threads.")
@click.option(
    "--max-seconds", default=DEFAULT_MAX_SECONDS, show_default=True, type=click.FloatRange(min=0, min_open=True)
)
@click.option("--overwrite/--resume", default=False, show_default=True, help="Start over instead of resuming.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@report_errors
def main(
    inputs,
    out_dir,
    file_list,
    checkpoint,
    trust_checkpoint,
    backend,
    device,
    model_path,
    film,
    condition,
    layer,
    pooling,
    pad_to_32,
    batch_size,
    chunk_size,
    workers,
    max_seconds,
    overwrite,
    progress,
) -> None:
    """Extract AudioSep encoder features of INPUTS (files and folders) into the store --out.

    Killed at any moment, the same command resumes: finished files are kept, never recomputed.
    Files that fail are listed with their error in the store's index, never dropped.
    """
    paths = collect_inputs(inputs, file_list)
    options = {"model_path": model_path} if model_path else {}
    extractor = FeatureExtractor.from_checkpoint(
        require_checkpoint(checkpoint),
        backend=backend,
        device=device,
        film=film,
        condition=condition,
        layer=layer,
        pooling=pooling,
        pad_to_32=pad_to_32,
        batch_size=batch_size,
        trust_pickle=trust_checkpoint,
        **options,
    )
    if extractor.weights.is_random:
        click.echo(f"note: {extractor.weights.source} weights are RANDOM (smoke run); the manifest says so.", err=True)
    store = extract_to_store(
        extractor,
        paths,
        out_dir,
        chunk_size=chunk_size,
        workers=workers,
        max_seconds=max_seconds,
        overwrite=overwrite,
        progress=progress,
    )
    summary = {"out": str(out_dir), **store.manifest.get("counts", {}), "last_run": store.manifest.get("last_run")}
    click.echo(json.dumps(summary))
    failures = store.failures()
    for _, row in failures.head(20).iterrows():
        click.echo(f"failed: {row['path']}: {row['error']}", err=True)
    if len(failures) > 20:
        click.echo(f"... and {len(failures) - 20} more failures (see {out_dir}/index.csv)", err=True)


if __name__ == "__main__":  # pragma: no cover - `python -m audiosep_kit.cli.extract`
    main()
