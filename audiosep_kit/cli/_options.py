"""Options and helpers shared by the command-line tools (one definition, used by every command)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click

from audiosep_kit._devices import parse_device
from audiosep_kit.errors import AudioSepKitError
from audiosep_kit.model import CHECKPOINT_ENV, FILM_MODES, LAYERS, POOLINGS, resolve_checkpoint
from audiosep_kit.runtime import backend_names, backends_taking


def checkpoint_option(fn: Callable) -> Callable:
    fn = click.option(
        "--trust-checkpoint/--no-trust-checkpoint",
        default=False,
        show_default=True,
        help="Fully unpickle the checkpoint (can run code: only for files you trust).",
    )(fn)
    return click.option(
        "--checkpoint",
        type=str,
        default=None,
        help=f"Checkpoint (.ckpt, .bin, .pt, .safetensors) or random:SEED. Default: ${CHECKPOINT_ENV}, "
        "then pretrained_models/AudioSep/.",
    )(fn)


def encoder_options(fn: Callable) -> Callable:
    """--film, --condition, --layer, --pooling, --pad-to-32 (the EncoderConfig fields)."""
    options = [
        click.option(
            "--film", type=click.Choice(FILM_MODES), default="none", show_default=True, help="FiLM conditioning."
        ),
        click.option(
            "--condition",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="512-d condition vector (.npy) for --film query.",
        ),
        click.option(
            "--layer", type=click.Choice(LAYERS), default="center", show_default=True, help="Which block to tap."
        ),
        click.option(
            "--pooling", type=click.Choice(POOLINGS), default="mean", show_default=True, help="Pooling of the map."
        ),
        click.option(
            "--pad-to-32/--no-pad-to-32",
            default=True,
            show_default=True,
            help="Pad time to a multiple of 32 frames (official); --no-pad-to-32 is the seed's variant.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def require_checkpoint(explicit: str | None) -> str:
    found = resolve_checkpoint(explicit)
    if found is None:
        raise click.UsageError(
            f"no checkpoint: pass --checkpoint PATH (or random:SEED for a labelled smoke run), set "
            f"${CHECKPOINT_ENV}, or put audiosep_base_4M_steps.ckpt / pytorch_model.bin in "
            "pretrained_models/AudioSep/ (see pretrained_models/README.md)."
        )
    return found


def report_errors(fn: Callable) -> Callable:
    """Turn the toolkit's deliberate errors into one clear line and exit status 2, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AudioSepKitError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


class CommaList(click.ParamType):
    """A comma-separated list option (``--seeds 0,1``, ``--batch-sizes 1,8``): one parser for every command.

    Items are converted with ``convert_item``; duplicates are dropped (first kept); an empty list, a
    bad item or (with ``positive=True``) a value <= 0 is a usage error naming the option.
    """

    def __init__(self, convert_item: type = str, *, positive: bool = False) -> None:
        self.convert_item = convert_item
        self.positive = positive
        self.name = f"{convert_item.__name__}[,{convert_item.__name__}...]"

    def convert(self, value, param, ctx) -> tuple:
        if isinstance(value, tuple):
            return value
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        try:
            out = tuple(dict.fromkeys(self.convert_item(item) for item in items))
        except ValueError:
            self.fail(
                f"expected comma-separated {self.convert_item.__name__} values, e.g. '1,8'; got {value!r}.", param, ctx
            )
        if not out:
            self.fail(f"expected at least one value; got {value!r}.", param, ctx)
        if self.positive and any(v <= 0 for v in out):
            self.fail(f"expected positive values; got {value!r}.", param, ctx)
        return out


class DeviceType(click.ParamType):
    """``cpu``, ``cuda`` or ``cuda:N``, checked when parsed (whether it exists is checked when used)."""

    name = "device"

    def convert(self, value, param, ctx) -> str:
        try:
            parse_device(value)
        except AudioSepKitError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


def device_option(help: str = "cpu, cuda or cuda:N; an unavailable device is an error, never a silent CPU run."):
    """The one --device option of every command."""
    return click.option("--device", type=DeviceType(), default="cpu", show_default=True, help=help)


def backend_option(fn: Callable) -> Callable:
    """The one --backend option of the commands that extract features."""
    return click.option(
        "--backend",
        type=click.Choice(backend_names()),
        default="eager",
        show_default=True,
        help="Extraction backend (fast: the fused oneDNN CPU backend, bf16 where the CPU has it natively).",
    )(fn)


def check_model_path(backend: str | None, model_path: Path | None) -> None:
    """A --model-path for a backend that loads no artifact is a usage error naming those that do."""
    takers = backends_taking("model_path")
    if model_path is None or backend is None or backend in takers:
        return
    raise click.BadParameter(
        f"--backend {backend} loads no exported artifact (got --model-path {model_path}); "
        f"--model-path is for --backend {' or '.join(takers)}. Drop --model-path, or pass one of those backends.",
        param_hint="'--model-path'",
    )


def model_path_option(fn: Callable) -> Callable:
    """The one --model-path option: an exported artifact for the onnx / aoti backends.

    The command is wrapped so that --model-path with another --backend is a usage error before
    anything loads. Why not a click callback: click processes options in command-line order, so a
    callback on --model-path cannot rely on seeing --backend.
    """

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        check_model_path(kwargs.get("backend"), kwargs.get("model_path"))
        return fn(*args, **kwargs)

    return click.option(
        "--model-path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=f"Exported artifact for the {' / '.join(backends_taking('model_path'))} backends (default: the export "
        "cache); an error with any other --backend.",
    )(checked)
