"""audiosep-eval: evaluate AudioSep features on a downstream task (logic lives in evaluate.runner).

    audiosep-eval --task speechcommands-v2 --backend onnx --checkpoint CKPT --data-root DATA \\
        --heads linear,mlp3 --seeds 0,1 --out DIR --device cpu --protocol official
    audiosep-eval --features esc50_features_audiosep.pt --task esc50 --data-root DATA

The top-level command runs an evaluation (the same as ``audiosep-eval run ...``); it is a click
group so that other tools can live beside it as subcommands (``main.add_command(...)``).
"""

from __future__ import annotations

import datetime as _dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click

from audiosep_kit._tables import format_table as format_rows
from audiosep_kit.cli._logging import setup_progress
from audiosep_kit.cli._options import (
    CommaList,
    backend_option,
    backends_option,
    cache_option,
    checkpoint_option,
    chunk_engine,
    cli_spelling,
    command_line,
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
from audiosep_kit.cli._sweep import refuse_sweep_of_features, run_sweep, sweep_options
from audiosep_kit.evaluate import (
    HEADS,
    PROTOCOL_CHOICES,
    EvalOptions,
    ExtractionConfig,
    RunConfig,
    evaluate_extracted,
    evaluate_precomputed,
    evaluate_suite,
    format_table,
    resolve_task_list,
)
from audiosep_kit.evaluate.tasks import DATA_ROOT_ENV, TASKS, run_name
from audiosep_kit.features import extract_to_store

__all__ = ["EXIT_INCOMPLETE", "main", "run", "eval_options", "run_from_options"]

#: Exit status of a suite run (--task all, --backends) in which some task could not be evaluated.
EXIT_INCOMPLETE = 3


_DEFAULTS = EvalOptions()


def _task_names() -> str:
    return ", ".join(TASKS)


def _complete_task(ctx, param, incomplete: str) -> list[str]:
    """Shell completion of --task: the registered names (csv:PATH and folder:DIR are typed out)."""
    return [name for name in (*TASKS, "all", "csv:", "folder:") if name.startswith(incomplete)]


def list_tasks() -> str:
    """The registered tasks as a table: name, protocol kind, classes, folder under --data-root, description."""
    rows = [
        [t.name, t.protocol, "from data" if t.labels_from_data else str(t.num_classes), f"{t.data_dir}/", t.description]
        for t in TASKS.values()
    ]
    table = format_rows(rows, ["task", "kind", "classes", "--data-root folder", "description"])
    custom = "csv:PATH (a CSV of path,label[,split|fold][,group]) and folder:DIR (one sub-folder per class)"
    return f"{table}\n\nAlso: {custom}."


def _print_tasks(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(list_tasks())
        ctx.exit(0)


def eval_options(fn: Callable) -> Callable:
    """Every option of an evaluation run, shared by the top-level command and ``run``."""
    options = [
        click.option(
            "--task",
            default=None,
            shell_complete=_complete_task,
            help=f"Task: {_task_names()}; or your own data: csv:LABELS.csv (path,label[,split|fold][,group]) or "
            "folder:DIR (one sub-folder per class), see docs/custom-datasets.md; or several: 'all' (every family "
            "found under --data-root) or a comma list, with one cross-task table. --list-tasks describes them.",
        ),
        click.option(
            "--list-tasks",
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_tasks,
            help="List the tasks (kind, classes, the folder each reads under --data-root) and exit.",
        ),
        click.option(
            "--features",
            type=click.Path(exists=True, path_type=Path),
            default=None,
            help="Saved features (no extraction): a store folder from audiosep-extract (matched to the task's "
            "examples by path), or a {'features','labels'} .pt in the task's metadata order.",
        ),
        click.option(
            "--data-root",
            type=click.Path(file_okay=False, path_type=Path),
            envvar=DATA_ROOT_ENV,
            default=None,
            help=f"Folder holding the datasets under their folder names (see --list-tasks; default: ${DATA_ROOT_ENV}).",
        ),
        click.option(
            "--task-root",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="The task's own dataset folder, instead of <--data-root>/<its folder name>.",
        ),
        click.option(
            "--heads",
            type=CommaList(str),
            default="linear,mlp3,logreg",
            show_default=True,
            help=f"Comma-separated heads ({', '.join(HEADS)}).",
        ),
        click.option("--seeds", type=CommaList(int), default="0", show_default=True, help="Comma-separated seeds."),
        click.option(
            "--protocol",
            type=click.Choice(PROTOCOL_CHOICES),
            default="official",
            show_default=True,
            help="official: evar for fold tasks (ESC-50, UrbanSound8K), split for split tasks. evar: train on "
            "every non-test fold minus a 10 % validation carve-out grouped by source recording; hear: validate "
            "on fold k+1, train on the rest; split: the official train/valid/test lists; seed: the seed project's "
            "LEAKY 80/20 recipe (best test epoch), labelled leaky. Old names: folds = hear, seed-project = seed.",
        ),
        output_option(required=False, dir_okay=True, help="Run folder (default: runs/<task>_<protocol>_<time>)."),
        device_option("Device for extraction and torch heads; cuda without CUDA is an error."),
        backend_option,
        backends_option(
            None,
            "Evaluate with each of these backends (same splits and seeds) and add their difference to eager; "
            "replaces --backend/--precision.",
        ),
        model_path_option,
        cache_option,
        progress_option,
        workers_option,
        engine_options,
        click.option(
            "--allow-missing/--no-allow-missing",
            default=False,
            show_default=True,
            help="Skip examples whose audio is absent (partial datasets) instead of failing.",
        ),
        click.option(
            "--max-epochs",
            type=click.IntRange(1),
            default=_DEFAULTS.max_epochs,
            show_default=True,
            help="Most epochs per torch-head fit (an L-BFGS epoch is 20 iterations; --protocol seed always uses 100).",
        ),
        click.option(
            "--patience",
            type=click.IntRange(1),
            default=_DEFAULTS.patience,
            show_default=True,
            help="Early-stopping patience in epochs (on validation accuracy).",
        ),
        click.option(
            "--embedding-map/--no-embedding-map",
            default=True,
            show_default=True,
            help="Draw a t-SNE (UMAP with umap-learn) map of the features by class in the run folder.",
        ),
        click.option(
            "--refit/--no-refit",
            default=False,
            show_default=True,
            help="Retrain the selected model on train+validation before testing (reports then count n_train "
            "as train+validation).",
        ),
    ]
    fn = sweep_options(encoder_options(checkpoint_option(fn)))
    for option in reversed(options):
        fn = option(fn)
    return fn


def _out_dir(out_dir: Path | None, task: str, protocol: str) -> Path:
    if out_dir is not None:
        return out_dir
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{task}_{protocol}_{stamp}"


def _progress(result) -> None:
    """One line per finished (head, partition, seed), scores in percent like the final table."""
    scores = " ".join(f"{k} {100 * v:.1f} %" for k, v in result.scores.items())
    click.echo(f"  {result.head:<7} {result.partition:<22} seed {result.seed}: {scores}", err=True)


def _extract(extractor, sources, out_dir, *, progress: bool | None, workers: int | None, device: str, engine):
    """The cache's extraction, with the --progress choice for its bar and --workers for its decoding
    (an automatic choice is said only when something is extracted, not on a cache hit), or on Ray."""
    how = decoding(workers, device) if engine is None else {"engine": engine}
    return extract_to_store(extractor, list(sources), out_dir, progress=progress, **how)


def _extract_with(kw: dict):
    engine = chunk_engine(kw["engine"], kw["address"], kw["actors"])
    return functools.partial(
        _extract, progress=kw["progress"], workers=kw["workers"], device=kw["device"], engine=engine
    )


def _extraction(kw: dict, backend: str | None = None) -> ExtractionConfig:
    """The extraction these options ask for; ``backend`` ('name:precision') overrides --backend/--precision."""
    name, precision = backend.split(":") if backend else (kw["backend"], kw["precision"])
    return ExtractionConfig(
        checkpoint=require_checkpoint(kw["checkpoint"]), backend=name, device=kw["device"],
        film=kw["film"], condition=kw["condition"], layer=kw["layer"], pooling=kw["pooling"],
        pad_to_32=kw["pad_to_32"], trust_checkpoint=kw["trust_checkpoint"], model_path=kw["model_path"],
        precision=precision, export_cache=kw["cache_dir"],
    )  # fmt: skip


def _features_cache(kw: dict) -> Path | None:
    return None if kw["cache_dir"] is None else kw["cache_dir"] / "features"


def _run_suite(config: RunConfig, kw: dict) -> None:
    """Several tasks (--task all, --task a,b) and/or several backends (--backends): one cross-task table."""
    for option, given in (("--features", kw["features"]), ("--task-root", kw["task_root"]),
                          ("--model-path", kw["model_path"])):  # fmt: skip
        if given is not None:
            raise click.UsageError(
                f"{option} names one task's or one backend's input; it cannot go with several tasks "
                "(--task all, --task a,b) or --backends. Run that task on its own."
            )
    tasks = resolve_task_list(kw["task"], kw["data_root"])
    labels = kw["backends"] or (f"{kw['backend']}:{kw['precision']}",)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = kw["out"] or Path("runs") / f"suite_{kw['protocol']}_{stamp}"
    click.echo(f"suite: {len(tasks)} task(s) {', '.join(tasks)} x backend(s) {', '.join(labels)} -> {out}", err=True)
    suite = evaluate_suite(
        tasks, [_extraction(kw, label) for label in labels], config, out, data_root=kw["data_root"],
        allow_missing=kw["allow_missing"], cache_dir=_features_cache(kw), progress=_progress,
        extract=_extract_with(kw), spell=cli_spelling,
    )  # fmt: skip
    click.echo(suite.paths["markdown"].read_text())
    for entry in suite.entries:
        if entry.status != "ok":
            click.echo(f"{entry.status}: {entry.task} ({entry.backend}): {entry.reason}", err=True)
    click.echo(f"wrote {out}/suite.md, suite.csv, suite.json, suite_<head>.png and one run folder per task")
    if not suite.complete:
        sys.exit(EXIT_INCOMPLETE)


def run_from_options(**kw) -> None:
    """Run one evaluation from parsed CLI options and print its table (used by ``main`` and ``run``)."""
    setup_progress(kw["progress"])
    if not kw["task"]:
        raise click.UsageError("--task is required (e.g. --task esc50).")
    options = EvalOptions(device=kw["device"], max_epochs=kw["max_epochs"], patience=kw["patience"], refit=kw["refit"])
    config = RunConfig(
        heads=kw["heads"], seeds=kw["seeds"], protocol=kw["protocol"], options=options, command=command_line(),
        embedding_map=kw["embedding_map"],
    )  # fmt: skip
    if kw["task"] == "all" or "," in kw["task"] or kw["backends"]:
        _run_suite(config, kw)
        return
    out = _out_dir(kw["out"], run_name(kw["task"]), kw["protocol"])
    common = {"data_root": kw["data_root"], "task_root": kw["task_root"], "out_dir": out, "progress": _progress}
    if kw["features"] is not None:
        refuse_sweep_of_features(kw["sweep"])
        evaluation = evaluate_precomputed(
            kw["features"], kw["task"], config, allow_missing=kw["allow_missing"], **common
        )
    else:
        if kw["sweep"]:
            if kw["engine"] != "local":
                raise click.UsageError(
                    "--sweep extracts every tap in one encoder pass in this process; it has no --engine ray. "
                    "Drop --engine ray, or evaluate one --layer at a time on Ray."
                )
            return run_sweep(kw, _extraction(kw), config, _features_cache(kw), **common)
        evaluation = evaluate_extracted(
            kw["task"], _extraction(kw), config, allow_missing=kw["allow_missing"], cache_dir=_features_cache(kw),
            extract=_extract_with(kw), **common,
        )  # fmt: skip
    click.echo(format_table(evaluation.report))
    click.echo(f"wrote {out}/results.json, results.csv, summary.md and confusion PNGs")


_HELP = {"help_option_names": ["-h", "--help"]}


@click.group(invoke_without_command=True, no_args_is_help=True, context_settings=_HELP)
@eval_options
@click.pass_context
@report_errors
def main(ctx: click.Context, **kw) -> None:
    """Evaluate AudioSep features on a downstream task (the same as ``audiosep-eval run``).

    Model selection uses validation data only (evar folds by default, hear folds, official splits);
    --protocol seed reproduces the seed project's leaky numbers and labels every output leaky.
    """
    if ctx.invoked_subcommand is None:
        run_from_options(**kw)


@main.command("run", context_settings=_HELP)
@eval_options
@report_errors
def run(**kw) -> None:
    """Evaluate AudioSep features on a downstream task."""
    run_from_options(**kw)


if __name__ == "__main__":  # pragma: no cover - `python -m audiosep_kit.cli.evaluate`
    main()
