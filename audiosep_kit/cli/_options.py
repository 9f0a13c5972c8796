"""Options and helpers shared by the command-line tools (one definition, used by every command)."""

from __future__ import annotations

import functools
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from audiosep_kit._devices import parse_device
from audiosep_kit._paths import CACHE_ENV
from audiosep_kit.errors import AudioSepKitError
from audiosep_kit.features import RayEngine, default_workers, usable_cores
from audiosep_kit.model import CHECKPOINT_ENV, FILM_MODES, LAYERS, POOLINGS, resolve_checkpoint
from audiosep_kit.runtime import backend_names, backend_variants, backends_taking, default_precision, parse_variant


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


def command_line() -> str:
    """The command as the user typed it, for reports: the program's name (``audiosep-eval``), not its
    full path; under ``python -m`` (argv[0] is the module's file) the name click gives it
    (``python -m audiosep_kit.cli.evaluate``). Then the arguments, quoted for a shell."""
    program = shlex.quote(Path(sys.argv[0]).name)
    ctx = click.get_current_context(silent=True)
    if program.endswith(".py") and ctx is not None and ctx.find_root().info_name:
        program = str(ctx.find_root().info_name)
    return " ".join([program, shlex.join(sys.argv[1:])]).strip()


def require_checkpoint(explicit: str | None) -> str:
    found = resolve_checkpoint(explicit)
    if found is None:
        raise click.UsageError(
            f"no checkpoint: pass --checkpoint PATH (or random:SEED for a labelled smoke run), set "
            f"${CHECKPOINT_ENV}, or put audiosep_base_4M_steps.ckpt / pytorch_model.bin in "
            "pretrained_models/AudioSep/ (see pretrained_models/README.md)."
        )
    return found


#: Python spellings in library error messages -> what a CLI user types instead. A value group, when
#: present, is the option's argument (``precision='fp32'`` -> ``--precision fp32``); True and False pick
#: the flag's two forms.
_CLI_NAMES = {
    "allow_missing": "--allow-missing",
    "data_root": "--data-root",
    "task_root": "--task-root",
    "trust_pickle": "--trust-checkpoint",
    "pad_to_32": "--pad-to-32",
    "precision": "--precision",
    "backend": "--backend",
    "device": "--device",
    "layer": "--layer",
    "pooling": "--pooling",
    "film": "--film",
    "condition": "--condition",
    "model_path": "--model-path",
    "window_seconds": "--window-seconds",
    "batch_size": "--batch-size",
    "chunk_size": "--chunk-size",
    "workers": "--workers",
    "cache_dir": "--cache-dir",
    "stft": None,  # a Python-only option: left as written
}
_PY_ARG = re.compile(r"\b(?P<name>[a-z][a-z0-9_]*)=(?P<value>True|False|'[^']*'|\"[^\"]*\"|[^\s,;()]*)")
_TICKED = re.compile(r"`(?P<name>[a-z][a-z0-9_]*)(?P<rest>[` ])")
_DUPLICATE = re.compile(r"(?P<opt>--[a-z0-9-]+)(?P<arg> [^\s,;()]+)? \((?:CLI |the CLI's )?(?P=opt)\)")


def cli_spelling(message: str) -> str:
    """``message`` with the Python keyword spellings of options replaced by their CLI flags.

    The library's errors name its keyword arguments (``allow_missing=True``, ``data_root=``); a CLI user
    needs ``--allow-missing`` and ``--data-root``. Unknown names are left as they are.
    """

    def flag(match: re.Match) -> str:
        name, value = match["name"], match["value"]
        option = _CLI_NAMES.get(name)
        if option is None:
            return match[0]
        if value == "True":
            return option
        if value == "False":
            return "--no-" + option[2:]
        return f"{option} {value.strip(chr(39) + chr(34))}" if value else option

    def ticked(match: re.Match) -> str:
        option = _CLI_NAMES.get(match["name"])
        return f"`{option}{match['rest']}" if option else match[0]

    spelled = _TICKED.sub(ticked, _PY_ARG.sub(flag, message))
    return _DUPLICATE.sub(lambda m: m["opt"] + (m["arg"] or ""), spelled)


def report_errors(fn: Callable) -> Callable:
    """Turn the toolkit's deliberate errors into one clear line (CLI-spelled) and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AudioSepKitError as exc:
            click.echo(f"error: {cli_spelling(str(exc))}", err=True)
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


def _variants_text() -> str:
    """'eager, compile, onnx (fp32|fp16), aoti, fast (fp32|bf16)': every backend and the precisions it offers."""
    offered: dict[str, list[str]] = {}
    for name, precision in backend_variants():
        offered.setdefault(name, []).append(precision)
    return ", ".join(name if len(p) == 1 else f"{name} ({'|'.join(p)})" for name, p in offered.items())


#: What each backend is, for --help (one text shared by --backend and --backends).
_BACKENDS_HELP = (
    "eager: PyTorch reference; compile: torch.compile; onnx: ONNX Runtime (CPU or CUDA EP); aoti: AOTInductor "
    "package; fast: fused oneDNN CPU encoder."
)


def precision_option(choices: Sequence[str], help: str) -> Callable:
    """The one --precision option (fp32 by default): a reduced precision only runs when asked for."""
    return click.option("--precision", type=click.Choice(list(choices)), default="fp32", show_default=True, help=help)


def backend_option(fn: Callable) -> Callable:
    """--backend NAME and --precision P: the engine of the commands that extract features.

    The precision is explicit and fp32 by default for every backend, so a reduced one (fast bf16,
    onnx fp16) is only ever run when asked for, and is recorded in every manifest and report.
    """
    fn = precision_option(
        _offered_precisions(),
        f"Numeric precision; each backend offers: {_variants_text()}. Reduced precision is judged by "
        "cosine to eager fp32 (audiosep_kit.numerics) and recorded in manifests and reports.",
    )(fn)
    return click.option(
        "--backend",
        type=_OneBackend(backend_names()),
        default="eager",
        show_default=True,
        help=f"Extraction backend. {_BACKENDS_HELP}",
    )(fn)


class _OneBackend(click.Choice):
    """A backend name; a list (``eager,onnx``, ``fast:bf16``) is pointed at the option that takes it."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and ("," in value or ":" in value):
            takes_list = ctx is not None and any(p.name == "backends" for p in ctx.command.params)
            if "," in value:
                how = f"several go in --backends {value}" if takes_list else "this command runs one at a time"
            else:
                name, _, precision = value.partition(":")
                how = f"a precision goes in --precision (--backend {name} --precision {precision})"
            self.fail(f"{value!r} is not one backend: {how}.", param, ctx)
        return super().convert(value, param, ctx)


def _offered_precisions() -> list[str]:
    return list(dict.fromkeys(precision for _, precision in backend_variants()))


class BackendList(click.ParamType):
    """``name[:precision],...`` checked against the registry; items come back as ``name:precision``
    (the precision defaulting to fp32, as for --precision)."""

    name = "name[:precision],..."

    def __init__(self, *, configured: bool = False) -> None:
        #: True (audiosep-bench): an item may carry backend options, ``onnx:fp32+prefer_nhwc=true``.
        self.configured = configured

    def convert(self, value, param, ctx) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        offered = backend_variants()
        out = []
        for item in (part.strip() for part in str(value).split(",")):
            if not item:
                continue
            if "+" in item:
                out.append(self._configured(item, param, ctx))
                continue
            name, _, precision = item.partition(":")
            precision = precision or (default_precision(name) if name in backend_names() else "")
            if (name, precision) not in offered:
                self.fail(f"{item!r} is not a backend this build offers; choose from {_variants_text()}.", param, ctx)
            out.append(f"{name}:{precision}")
        if not out:
            self.fail(f"expected at least one backend, e.g. eager,fast:bf16; got {value!r}.", param, ctx)
        return tuple(dict.fromkeys(out))

    def _configured(self, item: str, param, ctx) -> str:
        """A variant with options (``+key=value``), checked by runtime.parse_variant; bench only."""
        if not self.configured:
            self.fail(f"{item!r}: backend options (+key=value) are taken by audiosep-bench only.", param, ctx)
        try:
            parse_variant(item)
        except AudioSepKitError as exc:
            self.fail(str(exc), param, ctx)
        return item


def backends_option(default: str | None, help: str, *, configured: bool = False) -> Callable:
    """The one --backends option (a list) of the commands that compare backends (bench, parity);
    ``configured=True`` lets an item carry backend options (``+key=value``, audiosep-bench)."""
    options = " An item may add backend options, e.g. onnx:fp32+conv_algo_search=HEURISTIC." if configured else ""
    return click.option(
        "--backends",
        type=BackendList(configured=configured),
        default=default,
        show_default=default is not None,
        help=f"{help} Comma-separated name[:precision] from: {_variants_text()} (no precision: fp32).{options}",
    )


def output_option(*, required: bool, dir_okay: bool, help: str, json_alias: bool = False) -> Callable:
    """The one output option: ``-o/--out/--output`` (all three spellings, so none is ever refused).

    ``json_alias`` adds ``--json`` as a fourth spelling, for the commands whose output is a JSON report.
    """

    def decorate(fn: Callable) -> Callable:
        names = ["-o", "--out", "--output"] + (["--json"] if json_alias else [])
        return click.option(
            *names,
            "out",
            required=required,
            type=click.Path(dir_okay=dir_okay, file_okay=not dir_okay, path_type=Path),
            default=None,
            help=help,
        )(fn)

    return decorate


def progress_option(fn: Callable) -> Callable:
    """The one --progress/--no-progress option: step lines and bars on stderr (default: on a terminal)."""
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bars and step lines on stderr (default: only when stderr is a terminal).",
    )(fn)


def cache_option(fn: Callable) -> Callable:
    """The one --cache-dir option: the root of everything that can be rebuilt (exports and feature stores)."""
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=CACHE_ENV,
        default=None,
        help=f"Cache root: onnx/ and aoti/ exports, features/ stores (default: ${CACHE_ENV}, "
        "else ~/.cache/audiosep-kit). Deleting it only costs time.",
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


def workers_option(fn: Callable) -> Callable:
    """The one --workers option: decoding worker processes (default: chosen, and printed, by ``decoding``)."""
    return click.option(
        "--workers",
        type=click.IntRange(0),
        default=None,
        help="Decoding worker processes feeding the model; 0 decodes in two threads of this process. "
        "Default: from the cores and --device, printed at the start.",
    )(fn)


def engine_options(fn: Callable) -> Callable:
    """--engine, --address, --actors: where a store's chunks run (this process, or a Ray cluster)."""
    options = [
        click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="local: this process (decoding per --workers); ray: Ray Data on a cluster, same store "
            "(needs pip install 'audiosep-kit[ray]').",
        ),
        click.option(
            "--address",
            default=None,
            help="With --engine ray: an existing Ray cluster (host:port, ray://host:port or auto). "
            "Default: a local cluster for this run.",
        ),
        click.option(
            "--actors",
            type=click.IntRange(1),
            default=None,
            help="With --engine ray: model actors (default: one per GPU with --device cuda, else one per node).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def chunk_engine(engine: str, address: str | None, actors: int | None) -> RayEngine | None:
    """The engine --engine/--address/--actors ask for (None: the local one); Ray-only options alone are refused."""
    if engine == "local":
        given = [name for name, value in (("--address", address), ("--actors", actors)) if value is not None]
        if given:
            raise click.UsageError(f"{' and '.join(given)} apply to --engine ray only; add --engine ray or drop them.")
        return None
    return RayEngine(address=address, actors=actors)


def decoding(workers: int | None, device: str) -> dict:
    """``extract_to_store``'s decoding arguments for --workers, saying on stderr what an automatic choice is."""
    if workers is None:
        workers, why = default_workers(device, usable_cores())
        click.echo(f"note: --workers {workers} (auto: {why}).", err=True)
    return {"workers": workers, "processes": True} if workers else {"workers": 2, "processes": False}
