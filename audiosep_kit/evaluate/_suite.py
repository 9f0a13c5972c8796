"""Several tasks and backends in one run: each evaluated as usual, then one cross-task table.

``evaluate_suite`` runs :func:`evaluate_extracted` for every (task, backend) pair with the same
heads, seeds and protocol, each into its own run folder (``<out>/<task>/<backend>-<precision>/``, the
usual report), and then writes the suite's own table: ``suite.md``, ``suite.csv``, ``suite.json`` and a
bar chart per head (``suite_<head>.png``). With several backends the table adds each backend's
difference to eager fp32 in points, so the cost of a reduced precision is a measured number on a
task, not a cosine alone.

Resuming: features come from the content-keyed cache, so a rerun extracts nothing that was
extracted; a pair whose run folder holds a finished report of the same configuration (its
``suite_entry.json`` fingerprint) is read back instead of retrained. A task whose data cannot serve
the protocol (``DatasetError``: absent, too partial) is listed as refused with the reason, and the
other tasks still run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from audiosep_kit._identity import record_sha256
from audiosep_kit._tables import format_table
from audiosep_kit._validation import atomic_write_text
from audiosep_kit.errors import AudioSepKitError, ConfigError, DatasetError
from audiosep_kit.evaluate._agreement import feature_agreement
from audiosep_kit.evaluate._report import read_results
from audiosep_kit.evaluate._runner import ExtractionConfig, RunConfig, evaluate_extracted
from audiosep_kit.evaluate._suite_plot import plot_suite
from audiosep_kit.evaluate.tasks import get_task, run_name
from audiosep_kit.evaluate.tasks._common import locate
from audiosep_kit.evaluate.tasks._custom import is_custom

_log = logging.getLogger(__name__)

SUITE_FORMAT_VERSION = 1
#: The seed project's six task families in table order; for each, the first task whose folder exists
#: under the data root is run by ``--task all`` (Speech Commands: v0.02, else v0.01).
SUITE_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("esc50",),
    ("urbansound8k",),
    ("icbhi",),
    ("nsynth",),
    ("librispeech-speaker",),
    ("speechcommands-v2", "speechcommands-v1"),
)
_ENTRY = "suite_entry.json"


def resolve_task_list(spec: str, data_root: str | Path | None) -> list[str]:
    """``all`` -> the suite's task for every family found under the data root; ``a,b`` -> those names."""
    if spec.strip() != "all":
        names = [name.strip() for name in spec.split(",") if name.strip()]
        for name in names:
            if not is_custom(name):
                get_task(name)
        if not names:
            raise ConfigError(f"--task {spec!r} names no task; expected e.g. all or esc50,icbhi.")
        return list(dict.fromkeys(names))
    found = []
    for family in SUITE_FAMILIES:
        for name in family:
            try:
                locate(get_task(name), data_root, None)
            except DatasetError:
                continue
            found.append(name)
            break
    if not found:
        folders = ", ".join(f"{get_task(f[0]).data_dir}/" for f in SUITE_FAMILIES)
        raise DatasetError(f"--task all found no dataset folder under the data root {data_root}; expected {folders}.")
    return found


def backend_label(extraction: ExtractionConfig) -> str:
    return f"{extraction.backend}:{extraction.precision}"


@dataclass(frozen=True)
class SuiteEntry:
    """One (task, backend) pair: ``ok`` with its report, or ``refused``/``failed`` with the reason."""

    task: str
    backend: str
    status: str
    run_dir: Path
    reason: str = ""
    report: dict | None = None
    reused: bool = False


@dataclass(frozen=True)
class Suite:
    """Every entry, the cross-task rows and the files written."""

    entries: list[SuiteEntry]
    rows: list[dict]
    paths: dict[str, Path]

    @property
    def complete(self) -> bool:
        return all(e.status == "ok" for e in self.entries)


def _fingerprint(task: str, extraction: ExtractionConfig, config: RunConfig, allow_missing: bool) -> str:
    """What decides a pair's numbers (the command line and the date do not)."""
    run = dataclasses.asdict(dataclasses.replace(config, command=None))
    fields = {k: str(v) for k, v in dataclasses.asdict(extraction).items() if k != "export_cache"}
    return record_sha256({"task": task, "extraction": fields, "run": run, "allow_missing": allow_missing})


def _reusable(run_dir: Path, fingerprint: str) -> dict | None:
    entry = run_dir / _ENTRY
    if not entry.is_file() or not (run_dir / "results.json").is_file():
        return None
    if json.loads(entry.read_text()).get("fingerprint") != fingerprint:
        return None
    return read_results(run_dir / "results.json")


def _run_pair(task, extraction, config, run_dir, evaluate_one, spell, **kw) -> SuiteEntry:
    label = backend_label(extraction)
    fingerprint = _fingerprint(task, extraction, config, kw["allow_missing"])
    previous = _reusable(run_dir, fingerprint)
    if previous is not None:
        _log.info("suite: %s %s: finished earlier (%s), read back", task, label, run_dir)
        return SuiteEntry(task, label, "ok", run_dir, report=previous, reused=True)
    _log.info("suite: %s with %s", task, label)
    try:
        evaluation = evaluate_one(task, extraction, config, out_dir=run_dir, **kw)
    except DatasetError as exc:
        return SuiteEntry(task, label, "refused", run_dir, reason=spell(str(exc)))
    except AudioSepKitError as exc:
        return SuiteEntry(task, label, "failed", run_dir, reason=spell(str(exc)))
    atomic_write_text(run_dir / _ENTRY, json.dumps({"fingerprint": fingerprint, "task": task, "backend": label}))
    return SuiteEntry(task, label, "ok", run_dir, report=evaluation.report)


def evaluate_suite(
    tasks: Sequence[str],
    extractions: Sequence[ExtractionConfig],
    config: RunConfig,
    out_dir: str | Path,
    *,
    data_root: str | Path | None = None,
    allow_missing: bool = False,
    cache_dir: str | Path | None = None,
    progress: Callable | None = None,
    evaluate_one: Callable = evaluate_extracted,
    extract: Callable | None = None,
    spell: Callable[[str], str] = str,
) -> Suite:
    """Evaluate every task with every extraction (backend) and write the cross-task table into ``out_dir``.

    ``spell`` words the reasons of refused tasks for the caller: the library's errors name keyword
    arguments (``allow_missing=True``); the CLI passes its rewriting into option flags (``--allow-missing``).
    """
    if not tasks or not extractions:
        raise ConfigError("a suite needs at least one task and one backend.")
    out = Path(out_dir)
    kw = {"data_root": data_root, "allow_missing": allow_missing, "cache_dir": cache_dir, "progress": progress}
    if extract is not None:
        kw["extract"] = extract
    entries = []
    for task in tasks:
        for extraction in extractions:
            run_dir = out / run_name(task) / backend_label(extraction).replace(":", "-")
            entries.append(_run_pair(task, extraction, config, run_dir, evaluate_one, spell, **kw))
    rows = suite_rows(entries)
    paths = write_suite(entries, rows, out, config)
    return Suite(entries, rows, paths)


def suite_rows(entries: Sequence[SuiteEntry]) -> list[dict]:
    """One row per (task, backend, head): primary score mean and std (fractions), sizes, identity,
    and the difference to eager fp32 in points where the same task and head ran on eager."""
    rows = []
    for entry in entries:
        if entry.report is None:
            continue
        report = entry.report
        primary = report["task"]["scores"][0]
        measured = report.get("measured", {})
        for head, block in report["heads"].items():
            runs = block["runs"]
            rows.append({
                "task": entry.task, "backend": entry.backend, "head": head, "protocol": report["protocol"]["name"],
                "leaky": report["leaky"], "score": primary, "mean": block[f"{primary}_mean"],
                "std": block[f"{primary}_std"], "n_runs": block["n_runs"],
                "n_train": round(sum(r["n_train"] for r in runs) / len(runs)), "n_test": measured.get("n_test_total"),
                "layer": measured.get("layer"), "pooling": measured.get("pooling"), "film": measured.get("film"),
                "weights_sha256": measured.get("weights_sha256"), "random_weights": measured.get("random_weights"),
                "run_dir": str(entry.run_dir),
            })  # fmt: skip
    eager = {(r["task"], r["head"]): r["mean"] for r in rows if r["backend"] == "eager:fp32"}
    agreement = _agreements(entries)
    for row in rows:
        reference = eager.get((row["task"], row["head"]))
        ok = reference is not None and row["mean"] is not None
        row["delta_vs_eager_points"] = 100 * (row["mean"] - reference) if ok else None
        found = agreement.get((row["task"], row["backend"])) or {}
        row["features_min_cosine_vs_eager"] = found.get("min_cosine")
        row["features_max_rel_err_vs_eager"] = found.get("max_rel_err")
        row["features_rows_compared"] = found.get("n_rows")
    return rows


def _agreements(entries: Sequence[SuiteEntry]) -> dict[tuple[str, str], dict | None]:
    """Feature agreement with eager fp32 of every other backend's run of the same task."""
    eager = {e.task: e.report for e in entries if e.report is not None and e.backend == "eager:fp32"}
    return {
        (e.task, e.backend): feature_agreement(e.report, eager[e.task])
        for e in entries
        if e.report is not None and e.backend != "eager:fp32" and e.task in eager
    }


def _agreement_text(row: dict) -> str:
    if row["features_rows_compared"] is None:
        return "n/a"
    return (
        f"{1 - row['features_min_cosine_vs_eager']:.1e} / {row['features_max_rel_err_vs_eager']:.1e} "
        f"({row['features_rows_compared']} clips)"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _markdown(entries: Sequence[SuiteEntry], rows: list[dict], config: RunConfig) -> str:
    random = any(r["random_weights"] for r in rows)
    lines = ["# Cross-task results", ""]
    if random:
        lines += ["> **RANDOM WEIGHTS: a smoke run, not a measurement of AudioSep features**", ""]
    if any(r["leaky"] for r in rows):
        lines += ["> **LEAKY PROTOCOL: model selection used the test set; not comparable to official numbers**", ""]
    weights = sorted({str(r["weights_sha256"]) for r in rows})
    lines += [
        f"- command: `{config.command}`" if config.command else "- command: (Python API)",
        f"- weights sha256: {', '.join(weights) or 'n/a'}",
        f"- heads {list(config.heads)}, seeds {list(config.seeds)}; scores: each task's primary score, mean ± "
        "sample std (%) over (partition, seed) runs; n_train: examples the scored head was trained on (mean)",
        "",
    ]
    table = [
        [r["task"], r["protocol"], r["backend"], r["head"], r["score"], f"{_pct(r['mean'])} ± {_pct(r['std'])}",
         r["n_train"], r["n_test"], f"{r['layer']}/{r['pooling']}/{r['film']}"]
        for r in rows
    ]  # fmt: skip
    headers = ["task", "protocol", "backend", "head", "score", "%", "n_train", "n_test", "layer/pool/film"]
    lines += [format_table(table, headers, markdown=True), ""]
    if len({r["backend"] for r in rows}) > 1:
        diffs = [[r["task"], r["head"], r["backend"], _pct(r["mean"]),
                  "n/a" if r["delta_vs_eager_points"] is None else f"{r['delta_vs_eager_points']:+.2f}",
                  r["n_test"], _agreement_text(r)]
                 for r in rows if r["backend"] != "eager:fp32"]  # fmt: skip
        agreement = "features: 1 - min cos / max rel err"
        headers = ["task", "head", "backend", "%", "Δ vs eager (points)", "n_test", agreement]
        lines += ["## Backends against eager fp32 (same splits and seeds)", ""]
        lines += [format_table(diffs, headers, markdown=True), ""]
        lines += [
            "One test clip moves a score by 100/n_test points: a head near a decision boundary can flip a clip on "
            "features that agree to float32 rounding, so read the difference beside the features' agreement "
            "(1 - the minimum per-clip cosine, and the maximum error relative to eager's largest value, over the "
            "clips both extracted).",
            "",
        ]
    refused = [e for e in entries if e.status != "ok"]
    if refused:
        lines += ["## Not evaluated", ""] + [f"- {e.task} ({e.backend}): {e.status}: {e.reason}" for e in refused]
        lines.append("")
    heads = dict.fromkeys(r["head"] for r in rows)
    lines += [f"![{head}](suite_{head}.png)" for head in heads]
    return "\n".join(lines) + "\n"


def write_suite(entries: Sequence[SuiteEntry], rows: list[dict], out: Path, config: RunConfig) -> dict[str, Path]:
    """suite.json (format_version, entries with status and reason, rows), suite.csv, suite.md, PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "suite.json", "csv": out / "suite.csv", "markdown": out / "suite.md"}
    document = {
        "format_version": SUITE_FORMAT_VERSION,
        "command": config.command,
        "entries": [
            {
                "task": e.task,
                "backend": e.backend,
                "status": e.status,
                "reason": e.reason,
                "run_dir": str(e.run_dir),
                "reused": e.reused,
            }
            for e in entries
        ],  # fmt: skip
        "rows": rows,
    }
    atomic_write_text(paths["json"], json.dumps(document, indent=2, default=str))
    atomic_write_text(paths["csv"], pd.DataFrame(rows).to_csv(index=False))
    atomic_write_text(paths["markdown"], _markdown(entries, rows, config))
    for head in dict.fromkeys(r["head"] for r in rows):
        paths[f"png_{head}"] = out / f"suite_{head}.png"
        plot_suite([r for r in rows if r["head"] == head], head, paths[f"png_{head}"])
    return paths
