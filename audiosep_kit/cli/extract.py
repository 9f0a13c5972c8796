"""audiosep-extract: files, folders or a file list -> a resumable feature store.

Exit status: 0 when every input was extracted; 2 for a usage or configuration error (nothing
extracted); 3 when the run finished but some inputs failed, or a folder walk met entries it could
not read as audio (dangling or looping links, unreadable files, undecodable audio endings), unless
``--allow-failures``. Each is listed in the store's index.csv / skipped.csv, as are non-audio files
(a README, labels.csv), which do not change the status.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from audiosep_kit.audio import DEFAULT_MAX_SECONDS, SkippedFile, scan_audio_folder
from audiosep_kit.cli._logging import setup_progress
from audiosep_kit.cli._options import (
    backend_option,
    cache_option,
    checkpoint_option,
    chunk_engine,
    decoding,
    device_option,
    encoder_options,
    engine_options,
    model_path_option,
    output_option,
    progress_option,
    report_errors,
    require_checkpoint,
    workers_option,
)
from audiosep_kit.cli._plan import extraction_plan, plan_line
from audiosep_kit.errors import ConfigError
from audiosep_kit.features import extract_to_store
from audiosep_kit.runtime import FeatureExtractor, Tiling, artifact_options

__all__ = ["EXIT_FAILED_INPUTS", "main"]

#: Exit status of a run that finished with failed or skipped inputs (see the module docstring).
EXIT_FAILED_INPUTS = 3


def read_file_list(file_list: Path) -> list[Path]:
    """Paths of a list file, one a line (``#`` comments); relative ones are relative to the list's folder,
    so the same list means the same files from any working directory."""
    lines = file_list.read_text(encoding="utf-8").splitlines()
    base = file_list.absolute().parent
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [Path(os.path.abspath(base / entry)) for entry in entries]


def collect_inputs(inputs: tuple[Path, ...], file_list: Path | None) -> tuple[list[Path], list[SkippedFile]]:
    """Files as given, folders walked recursively (sorted, audio extensions only), plus a list file.

    Returns the inputs (absolute paths) and every candidate the folder walks saw and did not take,
    with its reason (dangling or looping links, unreadable entries, unknown or undecodable endings).
    """
    found: list[Path] = []
    skipped: list[SkippedFile] = []
    for item in inputs:
        if item.is_dir():
            scan = scan_audio_folder(item)
            found.extend(Path(os.path.abspath(p)) for p in scan.files)
            skipped.extend(SkippedFile(Path(os.path.abspath(s.path)), s.reason) for s in scan.skipped)
        else:
            found.append(Path(os.path.abspath(item)))
    if file_list is not None:
        found.extend(read_file_list(file_list))
    if not found and not skipped:
        raise ConfigError("no input audio: give files, folders (searched recursively) or --file-list FILE.")
    return found, skipped


def build_extractor(params: dict) -> FeatureExtractor:
    """The run's extractor from the command's parameters (click's ``ctx.params``); a dry run calibrates
    this same one, so that its timing is the run's."""
    return FeatureExtractor.from_checkpoint(
        require_checkpoint(params["checkpoint"]),
        backend=params["backend"],
        device=params["device"],
        film=params["film"],
        condition=params["condition"],
        layer=params["layer"],
        pooling=params["pooling"],
        pad_to_32=params["pad_to_32"],
        batch_size=params["batch_size"],
        trust_pickle=params["trust_checkpoint"],
        window_seconds=params["window_seconds"],
        **artifact_options(params["backend"], params["precision"], params["model_path"], params["cache_dir"]),
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@output_option(required=True, dir_okay=True, help="Store folder (created, or resumed if it exists).")
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
@workers_option
@engine_options
@click.option(
    "--max-seconds", default=DEFAULT_MAX_SECONDS, show_default=True, type=click.FloatRange(min=0, min_open=True)
)
@click.option(
    "--window-seconds",
    default=Tiling().window_seconds,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Most audio per backend call (bounds memory); longer files run in exact overlapping windows.",
)
@click.option("--overwrite/--resume", default=False, show_default=True, help="Start over instead of resuming.")
@click.option("--retry-failed", is_flag=True, help="Also redo inputs that failed permanently in earlier runs.")
@click.option("--verify-content", is_flag=True, help="On resume, re-hash every finished input, not only changed ones.")
@click.option("--allow-failures", is_flag=True, help=f"Exit 0 even if inputs failed (default: {EXIT_FAILED_INPUTS}).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (files, hours, rows a rerun would run, shards, peak memory, estimated time); extract nothing.",
)
@click.option(
    "--calibrate/--no-calibrate",
    default=True,
    show_default=True,
    help="With --dry-run: time this run's model and decoding on its first inputs (a few seconds) for the estimate.",
)
@cache_option
@progress_option
@report_errors
def main(
    inputs,
    out,
    file_list,
    checkpoint,
    trust_checkpoint,
    backend,
    precision,
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
    engine,
    address,
    actors,
    max_seconds,
    window_seconds,
    overwrite,
    retry_failed,
    verify_content,
    allow_failures,
    dry_run,
    calibrate,
    cache_dir,
    progress,
) -> None:
    """Extract AudioSep encoder features of INPUTS (files and folders) into the store --out.

    Killed at any moment, the same command resumes: finished files are kept, never recomputed
    (unless their content changed). Files that fail are listed with their error in the store's
    index, never dropped, and the exit status is 3 (see --allow-failures).
    """
    setup_progress(progress)
    ray_engine = chunk_engine(engine, address, actors)
    paths, skipped = collect_inputs(inputs, file_list)
    build = functools.partial(build_extractor, click.get_current_context().params)
    if dry_run:
        plan = extraction_plan(
            paths,
            skipped,
            out,
            chunk_size=chunk_size,
            window_seconds=window_seconds,
            max_seconds=max_seconds,
            decoding=decoding(workers, device),
            overwrite=overwrite,
            retry_failed=retry_failed,
            verify_content=verify_content,
            build=build if calibrate else None,
        )
        plan["engine"] = engine
        if ray_engine is not None:  # the dry run does not join the cluster: its shape is unknown here
            plan["estimate_scope"] = (
                "this machine, one process; on Ray divide the model-bound time by the actors "
                "(benchmarks/README.md, Scaling model)"
            )
        click.echo(json.dumps(plan))
        click.echo(plan_line(plan), err=True)
        return
    out_dir = out
    extractor = build()
    if extractor.weights.is_random:
        click.echo(f"note: {extractor.weights.source} weights are RANDOM (smoke run); the manifest says so.", err=True)
    store = extract_to_store(
        extractor,
        paths,
        out_dir,
        chunk_size=chunk_size,
        **(decoding(workers, device) if ray_engine is None else {"engine": ray_engine}),
        max_seconds=max_seconds,
        overwrite=overwrite,
        retry_failed=retry_failed,
        verify_content=verify_content,
        skipped=[(s.path, s.reason) for s in skipped],
        progress=progress,
    )
    counts = store.manifest.get("counts", {})
    summary = {"out": str(out_dir), **counts, "skipped": len(skipped), "last_run": store.manifest.get("last_run")}
    click.echo(json.dumps(summary))
    failures = store.failures()
    for _, row in failures.head(20).iterrows():
        click.echo(f"failed: {row['error']}", err=True)
    if len(failures) > 20:
        click.echo(f"... and {len(failures) - 20} more failures (see {out_dir}/index.csv)", err=True)
    for entry in skipped[:20]:
        click.echo(f"skipped: {entry.path}: {entry.reason}", err=True)
    if len(skipped) > 20:
        click.echo(f"... and {len(skipped) - 20} more skipped (see {out_dir}/skipped.csv)", err=True)
    lost = [entry for entry in skipped if not entry.not_audio]
    bad = len(failures) + len(lost)
    click.echo(
        f"summary: {counts.get('ok', 0)} extracted, {len(failures)} failed, {len(skipped)} skipped "
        f"({len(lost)} of them audio that could not be read), {len(store.index)} inputs in {out_dir}",
        err=True,
    )
    if bad and not allow_failures:
        sys.exit(EXIT_FAILED_INPUTS)


if __name__ == "__main__":  # pragma: no cover - `python -m audiosep_kit.cli.extract`
    main()
