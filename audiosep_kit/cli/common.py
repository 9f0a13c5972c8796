"""Options and helpers shared by the command-line tools (one definition, used by every command)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click

from audiosep_kit.errors import AudioSepKitError
from audiosep_kit.model.checkpoint import CHECKPOINT_ENV, resolve_checkpoint
from audiosep_kit.model.config import FILM_MODES, LAYERS, POOLINGS

__all__ = ["encoder_options", "checkpoint_option", "require_checkpoint", "report_errors", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".mp3", ".opus", ".w64", ".caf")


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
        click.option("--film", type=click.Choice(FILM_MODES), default="none", show_default=True, help="FiLM conditioning."),
        click.option("--condition", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="512-d condition vector (.npy) for --film query."),
        click.option("--layer", type=click.Choice(LAYERS), default="center", show_default=True, help="Which block to tap."),
        click.option("--pooling", type=click.Choice(POOLINGS), default="mean", show_default=True, help="Pooling of the map."),
        click.option("--pad-to-32/--no-pad-to-32", default=True, show_default=True,
                     help="Pad time to a multiple of 32 frames (official); --no-pad-to-32 is the seed's variant."),
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
