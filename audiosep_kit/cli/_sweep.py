"""audiosep-eval's ablation sweep: ``--sweep AXIS=V1,V2,...`` (repeatable) and ``--sweep-baseline``.

``--sweep layer=block1,block2,center --sweep pooling=mean,max --sweep film=none,zero`` evaluates
every point of the grid (evaluate.evaluate_sweep: one encoder pass per FiLM mode); an axis not
swept takes the single --layer / --pooling / --film value. A bad axis name or value, an axis given
twice, or --sweep with --features is a usage error naming the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from audiosep_kit.evaluate import SWEEP_AXES, ExtractionConfig, RunConfig, SweepAxes, evaluate_sweep, format_sweep


class SweepAxisType(click.ParamType):
    """``AXIS=V1,V2,...`` with AXIS one of film, layer, pooling and each value one that axis takes."""

    name = "AXIS=V1,V2,..."

    def convert(self, value, param, ctx) -> tuple[str, tuple[str, ...]]:
        if isinstance(value, tuple):
            return value
        axis, sep, listed = str(value).partition("=")
        axis = axis.strip()
        if not sep or axis not in SWEEP_AXES:
            self.fail(f"expected AXIS=V1,V2,... with AXIS one of {', '.join(SWEEP_AXES)}; got {value!r}.", param, ctx)
        values = tuple(dict.fromkeys(v.strip() for v in listed.split(",") if v.strip()))
        bad = [v for v in values if v not in SWEEP_AXES[axis]]
        if not values or bad:
            self.fail(
                f"{axis} takes {', '.join(SWEEP_AXES[axis])}; got {', '.join(map(repr, bad)) or 'no value'} "
                f"in {value!r}.",
                param,
                ctx,
            )
        return axis, values


def _one_per_axis(ctx: click.Context, param: click.Parameter, value: tuple) -> dict[str, tuple[str, ...]]:
    axes: dict[str, tuple[str, ...]] = {}
    for axis, values in value:
        if axis in axes:
            raise click.BadParameter(f"axis {axis!r} is given twice; list all its values in one --sweep {axis}=...")
        axes[axis] = values
    return axes


def sweep_options(fn: Callable) -> Callable:
    """--sweep (repeatable) and --sweep-baseline."""
    fn = click.option(
        "--sweep-baseline/--no-sweep-baseline",
        default=False,
        show_default=True,
        help="With --sweep: also time one single configuration (the deepest swept layer) on the same clips, "
        "and record both extraction times and their ratio in sweep.json.",
    )(fn)
    return click.option(
        "--sweep",
        type=SweepAxisType(),
        multiple=True,
        callback=_one_per_axis,
        help="Evaluate a grid, one encoder pass per FiLM mode (eager only): layer=block1,...,center, "
        "pooling=mean,meanstd,max, film=none,zero,query. Repeat for several axes; the others take "
        "--layer/--pooling/--film. Writes a run folder per point plus sweep.json/.csv/.md and plots.",
    )(fn)


def refuse_sweep_of_features(sweep: dict) -> None:
    """--sweep with --features: the sweep extracts its own features, so one of them is a mistake."""
    if sweep:
        raise click.UsageError("--sweep extracts its own features; drop --features (or drop --sweep).")


def run_sweep(kw: dict, extraction: ExtractionConfig, config: RunConfig, cache_dir: Path | None, **common) -> None:
    """Run the sweep the parsed options describe and print its table."""
    spec = kw["sweep"]
    axes = SweepAxes(
        films=spec.get("film", (kw["film"],)),
        layers=spec.get("layer", (kw["layer"],)),
        poolings=spec.get("pooling", (kw["pooling"],)),
    )
    evaluation = evaluate_sweep(
        kw["task"], extraction, axes, config, allow_missing=kw["allow_missing"], cache_dir=cache_dir,
        show_progress=kw["progress"], baseline=kw["sweep_baseline"], **common,
    )  # fmt: skip
    click.echo(format_sweep(evaluation.summary))
    click.echo(f"wrote {common['out_dir']}/sweep.json, sweep.csv, sweep.md, sweep_<head>.png and a folder per point")
