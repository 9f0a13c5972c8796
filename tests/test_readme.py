"""Every shell command the documentation shows is checked against the code it names.

A README command that the CLI refuses (``audiosep-export onnx ... --out``, once) is a bug a new user
meets first. So each shell line of the Markdown files below is parsed and checked: ``audiosep-*``
commands against their click definitions (every option exists on that (sub)command, and every value
of a typed option converts: choices, lists, numbers; paths are not required to exist), ``make``
targets against the Makefile, ``pip install`` extras against pyproject.toml, and ``python -m``
modules against the package.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "benchmarks" / "README.md", REPO / "pretrained_models" / "README.md"]
DOCS += sorted((REPO / "docs").glob("*.md"))
_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.M | re.S)
_SHELL_LANGS = {"", "sh", "bash", "shell", "console"}
_ENV_ASSIGN = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def shell_lines(text: str) -> list[str]:
    """Command lines of the shell code blocks (continuations joined, comments and prompts removed)."""
    lines: list[str] = []
    for block in _FENCE.finditer(text):
        if block["lang"] not in _SHELL_LANGS:
            continue
        joined = block["body"].replace("\\\n", " ")
        for raw in joined.splitlines():
            line = raw.split(" #", 1)[0].strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


_INLINE = re.compile(r"`((?:\.venv/bin/)?audiosep-[a-z]+ [^`]*)`")


def inline_commands(text: str) -> list[str]:
    """``audiosep-*`` command lines written as inline code outside the fenced blocks (tables, prose)."""
    return _INLINE.findall(_FENCE.sub("", text))


def _commands(line: str) -> list[list[str]]:
    """The simple commands of a line (split at ``&&``, ``;`` and ``|``), leading VAR=value dropped."""
    out, current = [], []
    for token in shlex.split(line):
        if token in ("&&", ";", "|", "||"):
            out.append(current)
            current = []
        else:
            current.append(token)
    out.append(current)
    cleaned = []
    for words in out:
        while words and _ENV_ASSIGN.match(words[0]):
            words = words[1:]
        if words:
            cleaned.append(words)
    return cleaned


def _scripts() -> dict[str, click.Command]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    out = {}
    for name, target in project["scripts"].items():
        module, _, attr = target.partition(":")
        out[name] = getattr(importlib.import_module(module), attr)
    return out


def _option_map(command: click.Command) -> dict[str, click.Parameter]:
    names: dict[str, click.Parameter] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                names[name] = param
    names.setdefault("--help", None)  # type: ignore[assignment]
    names.setdefault("-h", None)  # type: ignore[assignment]
    return names


def _check_value(param: click.Parameter, value: str, where: str) -> None:
    """Convert ``value`` with the option's type (paths are only required to be well formed)."""
    if isinstance(param.type, click.Path):
        return
    try:
        param.type.convert(value, param, None)
    except click.BadParameter as exc:
        raise AssertionError(f"{where}: {param.opts[0]} {value!r} is refused: {exc.message}") from None


def check_cli(words: list[str], where: str) -> None:
    """``words`` (an audiosep-* command line) against its click definition."""
    scripts = _scripts()
    command = scripts[Path(words[0]).name]
    args = words[1:]
    if isinstance(command, click.Group) and args and not args[0].startswith("-") and args[0] in command.commands:
        command = command.commands[args[0]]
        args = args[1:]
    options = _option_map(command)
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or token == "-":
            i += 1
            continue
        name, has_inline, inline = token.partition("=")
        assert name in options, f"{where}: {' '.join(words[:2])} has no option {name}; it has {sorted(options)}"
        param = options[name]
        if param is None or param.is_flag or name in getattr(param, "secondary_opts", ()):
            i += 1
            continue
        value = inline if has_inline else (args[i + 1] if i + 1 < len(args) else None)
        assert value is not None, f"{where}: {name} needs a value"
        _check_value(param, value, where)
        i += 1 if has_inline else 2


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))


def _extras() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def check_line(words: list[str], where: str) -> bool:
    """Check one simple command; True if it was one of the kinds this test knows."""
    program = Path(words[0]).name
    if program.startswith("audiosep-"):
        assert program in _scripts(), f"{where}: no console script {program}"
        check_cli(words, where)
        return True
    if program == "make":
        targets = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        for target in targets:
            assert target in _make_targets(), f"{where}: make has no target {target!r}"
        return True
    if program.startswith("python") and words[1:2] == ["-m"] and words[2].startswith("audiosep_kit"):
        importlib.import_module(words[2])
        return True
    if program == "pip" or words[1:3] == ["-m", "pip"]:
        for spec in re.findall(r"audiosep-kit\[([^\]]+)\]", " ".join(words)):
            unknown = set(spec.split(",")) - _extras()
            assert not unknown, f"{where}: pyproject.toml has no extra(s) {sorted(unknown)}"
        return True
    return False


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_command_matches_the_code(doc):
    text = doc.read_text()
    lines = shell_lines(text) + inline_commands(text)
    checked = 0
    for number, line in enumerate(lines, start=1):
        for words in _commands(line):
            checked += check_line(words, f"{doc.name} command {number} ({line[:60]})")
    if doc.name == "README.md" and doc.parent == REPO:
        assert checked >= 10, f"expected the README to show its commands; checked {checked}"


def test_a_wrong_option_in_a_documented_command_is_caught():
    """The checker itself fails on the README mistake it exists for, and on a bad choice value."""
    with pytest.raises(AssertionError, match="has no option --outfile"):
        check_cli(["audiosep-export", "onnx", "--checkpoint", "random:0", "--outfile", "m.onnx"], "t")
    with pytest.raises(AssertionError, match="--backend 'tensorflow' is refused"):
        check_cli(["audiosep-extract", "a.wav", "--out", "s", "--backend", "tensorflow"], "t")
    with pytest.raises(AssertionError, match="make has no target"):
        check_line(["make", "deploy"], "t")


def test_shell_lines_join_continuations_and_drop_comments():
    text = "```sh\n# setup\nmake venv   # once\naudiosep-eval --task esc50 \\\n    --heads logreg\n```\n"
    assert shell_lines(text) == ["make venv", "audiosep-eval --task esc50      --heads logreg"]
