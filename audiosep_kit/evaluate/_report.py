"""Evaluation reports: results.json (a stable, versioned contract), results.csv, summary.md, PNGs.

``results.json`` always holds ``format_version``, the task, the protocol with its ``leaky`` flag, the
seeds, the provenance of the features (weights SHA-256 and whether they were random, backend, what
executed) and package versions, and under ``heads[<name>]`` at least ``accuracy_mean``,
``accuracy_std`` and ``macro_f1_mean``: scripts may rely on these keys. Since format 2, ``measured``
says in one place what the numbers are of: the command line, layer, pooling, FiLM mode, backend and
precision, the weights' identity (SHA-256, source, whether random), the protocol, the test-set sizes per
partition and in total, and ``n_train``: per partition, the rows the *scored* model was trained on
(train, or train+validation with refit); the CSV rows, the summary.md header and the table repeat it.
Devices are recorded as they ran: ``heads[<name>]['device']`` (and each run's ``device``) is where
that head trained, e.g. ``cpu`` for logreg even when ``device_requested`` is ``cuda``; the
extraction's is in ``provenance.executed``. Means and standard deviations are over every (partition,
seed) run of a head; the std is the sample std (ddof=1), 0.0 for a single run. NaN scores (e.g.
ICBHI Se on a test set without abnormal cycles) appear as null.
``floor`` (``evaluate._floors``) holds what constant predictions score on the same test rows, summarised
like a head: ``majority`` for every task, ``constant_normal`` for ICBHI; the tables show them as rows
under the heads ("constant 'normal' floor"). Reports written before it have no ``floor`` key.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from audiosep_kit._tables import format_table as render_table
from audiosep_kit._validation import atomic_write_text, check_format_version
from audiosep_kit._versions import package_versions
from audiosep_kit.errors import ArtifactMismatchError
from audiosep_kit.evaluate._confusion import confusion_title, plot_confusion
from audiosep_kit.evaluate._embedding_map import write_embedding_map
from audiosep_kit.evaluate._metrics import score_names
from audiosep_kit.evaluate._protocols import EvalOptions, Protocol, RunResult
from audiosep_kit.evaluate.tasks._task import Task

REPORT_FORMAT_VERSION = 2  # 2: the required ``measured`` block
#: Versions :func:`read_results` reads (1 has no ``measured`` block).
READABLE_VERSIONS = (1, 2)


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


def summarize(results: Sequence[RunResult], scores: Sequence[str]) -> dict[str, dict]:
    """Per head: ``<score>_mean`` and ``<score>_std`` over all its runs, plus ``n_runs``."""
    out: dict[str, dict] = {}
    for head in dict.fromkeys(r.head for r in results):
        runs = [r for r in results if r.head == head]
        row: dict = {"n_runs": len(runs)}
        for name in scores:
            values = np.array([r.scores[name] for r in runs], dtype=np.float64)
            row[f"{name}_mean"] = float(np.mean(values))
            row[f"{name}_std"] = _std(values)
        out[head] = row
    return out


def _run_record(r: RunResult) -> dict:
    sel = r.selection
    return {
        "partition": r.partition,
        "seed": r.seed,
        "params": sel.params,
        "best_epoch": sel.best_epoch,
        "val_score": sel.val_score,
        "val_source": r.val_source,
        "n_train": r.n_train,
        "refit": r.refit,
        "n_val": r.n_val,
        "n_test": r.n_test,
        "scores": r.scores,
        "device": r.device,
        "candidates": list(sel.candidates),
    }


def _ran_on(runs: Sequence[RunResult]) -> str:
    """The device a head's runs used (one name; several joined if runs differed)."""
    return ",".join(dict.fromkeys(r.device for r in runs))


def test_sizes(results: Sequence[RunResult], field: str = "n_test") -> dict[str, int]:
    """Test clips (or ``field``: ``n_train``) per partition: the largest over its runs, which agree
    for every head and seed of a partition."""
    sizes: dict[str, int] = {}
    for r in results:
        sizes[r.partition] = max(sizes.get(r.partition, 0), int(getattr(r, field)))
    return sizes


def train_sizes_text(n_train: dict[str, int]) -> str:
    """``1440`` when every partition trained on as many rows, else ``1436-1446`` (min-max)."""
    low, high = min(n_train.values(), default=0), max(n_train.values(), default=0)
    return str(low) if low == high else f"{low}-{high}"


def measured(provenance: dict, results: Sequence[RunResult], command: str | None, protocol: str | None = None) -> dict:
    """What the numbers are of, flat: command, protocol, encoder options, engine, weights, train/test sizes."""
    encoder = provenance.get("encoder") or {}
    weights = provenance.get("weights") or {}
    sizes = test_sizes(results)
    return {
        "command": command,
        "protocol": protocol,
        "layer": encoder.get("layer"),
        "pooling": encoder.get("pooling"),
        "film": encoder.get("film"),
        "backend": provenance.get("backend"),
        "precision": provenance.get("precision"),
        "weights_sha256": weights.get("sha256"),
        "weights_source": weights.get("source"),
        "random_weights": weights.get("random_weights"),
        "n_test": sizes,
        "n_test_total": sum(sizes.values()),
        "n_train": test_sizes(results, "n_train"),
    }


def build_report(
    results: Sequence[RunResult],
    *,
    task: Task,
    protocol: Protocol,
    seeds: Sequence[int],
    options: EvalOptions,
    provenance: dict,
    command: str | None = None,
    floor: dict | None = None,
) -> dict:
    """The results.json document. ``provenance`` describes the features (see runner.provenance_*);
    ``command`` is the command line that ran it (the CLI passes ``shlex.join(sys.argv)``); ``floor`` is
    ``evaluate._floors.floor_scores`` of the same partitions (the runner always passes it)."""
    names = score_names(task.scores)
    summary = summarize(results, names)
    heads = {}
    for head, row in summary.items():
        runs = [r for r in results if r.head == head]
        heads[head] = {**row, "device": _ran_on(runs), "runs": [_run_record(r) for r in runs]}
    protocol_options = {**options.head_params(), **protocol.head_overrides, "val_fraction": options.val_fraction}
    protocol_options.pop("device")  # where heads ran is per head (heads[...]["device"]), not a protocol option
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "task": {"name": task.name, "num_classes": task.num_classes, "kind": task.protocol, "scores": list(names)},
        "protocol": {
            "name": protocol.name,
            "leaky": protocol.leaky,
            "description": protocol.description,
            "refit": bool(options.refit and not protocol.leaky),
            "options": protocol_options,
        },
        "leaky": protocol.leaky,
        "device_requested": options.device,
        "seeds": list(seeds),
        "measured": measured(provenance, results, command, protocol.name),
        "provenance": provenance,
        "versions": package_versions(),
        "heads": heads,
        "floor": floor or {},
    }


def json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


#: ``measured`` entries repeated on every CSV row, so a row read alone still says what it measured.
_CSV_MEASURED = ("layer", "pooling", "film", "backend", "precision", "weights_sha256", "random_weights")


def _csv_frame(report: dict) -> pd.DataFrame:
    rows = []
    setup = {k: report.get("measured", {}).get(k) for k in _CSV_MEASURED}
    for head, block in report["heads"].items():
        for run in block["runs"]:
            rows.append({
                "head": head, "protocol": report["protocol"]["name"], "leaky": report["leaky"], **setup,
                "partition": run["partition"], "seed": run["seed"], "params": json.dumps(run["params"]),
                "best_epoch": run["best_epoch"], "val_score": run["val_score"], "refit": run.get("refit", False),
                "n_train": run["n_train"], "n_val": run["n_val"], "n_test": run["n_test"], **run["scores"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def _cell(block: dict, name: str) -> str:
    mean, std = block.get(f"{name}_mean"), block.get(f"{name}_std")
    if mean is None or std is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "n/a"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def banners(report: dict) -> list[str]:
    """Warnings that must travel with the numbers: a leaky protocol, random weights, reduced data."""
    out = []
    if report["leaky"]:
        out.append("!! LEAKY PROTOCOL: model selection used the test set; not comparable to official numbers !!")
    if ((report.get("provenance") or {}).get("weights") or {}).get("random_weights"):
        out.append("!! RANDOM WEIGHTS: a smoke run, not a measurement of AudioSep features !!")
    out += [f"!! NOTE: {note} !!" for note in (report.get("provenance") or {}).get("data_notes") or ()]
    return out


def format_table(report: dict) -> str:
    """A plain-text table of mean ± std (in %) per head, with the protocol and any warning banners."""
    lines = banners(report)
    proto = report["protocol"]
    header = f"task {report['task']['name']} | protocol {proto['name']} | seeds {report['seeds']}"
    n_train = (report.get("measured") or {}).get("n_train")
    lines.append(header + (f" | scored heads trained on {train_sizes_text(n_train)} examples" if n_train else ""))
    if proto.get("description"):
        lines.append(f"protocol {proto['name']}: {proto['description']} (refit: {proto.get('refit')})")
    lines.append(_score_table(report))
    return "\n".join(lines)


def floor_label(block: dict) -> str:
    """The table row of a floor: its name, and the class it predicts when that is one class everywhere."""
    predicted = set((block.get("predicts") or {}).values())
    if block["name"].startswith("majority") and len(predicted) == 1:
        return f"{block['name']} ({predicted.pop()!r})"
    return block["name"]


def _score_table(report: dict, *, markdown: bool = False) -> str:
    names = report["task"]["scores"]
    rows = [[h, b["n_runs"], _trained_on(b), *(_cell(b, n) for n in names)] for h, b in report["heads"].items()]
    rows += [[floor_label(b), b["n_runs"], "", *(_cell(b, n) for n in names)] for b in report.get("floor", {}).values()]
    headers = ["head", "runs", "n_train", *names]
    return render_table(rows, headers, formats=["", "d", "", *[""] * len(names)], markdown=markdown)


def _trained_on(block: dict) -> str:
    """The rows the scored model of a head was trained on, over its runs (``1440`` or ``1436-1446``)."""
    return train_sizes_text({str(i): run["n_train"] for i, run in enumerate(block["runs"])})


def _markdown(report: dict, images: dict[str, str], embedding: Path | None = None) -> str:
    prov = report["provenance"]
    weights = prov.get("weights", {})
    out = [f"# {report['task']['name']}: {report['protocol']['name']}", ""]
    out += [f"> **{line.strip('! ')}**" for line in banners(report)]
    out += [""] if banners(report) else []
    out += _measured_lines(report["measured"])
    out += [
        f"- protocol: {report['protocol']['name']}: {report['protocol']['description']} "
        f"(refit: {report['protocol']['refit']})",
        f"- seeds: {report['seeds']}; date: {report['date']}",
        f"- features: {prov.get('source')}; backend {prov.get('backend')}; executed {prov.get('executed')}",
        f"- weights sha256: {weights.get('sha256')} (random: {weights.get('random_weights')})",
        f"- devices: requested {report['device_requested']}; heads ran on "
        + ", ".join(f"{head} {block['device']}" for head, block in report["heads"].items()),
        f"- versions: {', '.join(f'{k} {v}' for k, v in report['versions'].items())}",
        "",
        _score_table(report, markdown=True),
    ]
    out += ["", "Mean ± sample std (%) over every (partition, seed) run; n_train: rows the scored model trained on."]
    if report.get("floor"):
        out += [
            "Floors: a constant prediction scored on the same test rows, no features (majority: the most "
            "frequent training class of each partition)."
        ]
    for head, image in images.items():
        out += ["", f"![confusion matrix, {head}]({image})"]
    if embedding is not None:
        out += ["", f"![2-D map of the features by class]({embedding.name})"]
    return "\n".join(out) + "\n"


def _measured_lines(m: dict) -> list[str]:
    """The summary.md header: what was measured, before any number."""
    sizes = ", ".join(f"{part} {n}" for part, n in m["n_test"].items())
    random = " — RANDOM weights" if m["random_weights"] else ""
    return [
        f"- command: `{m['command']}`" if m["command"] else "- command: (not recorded: called from Python)",
        f"- encoder: layer {m['layer']}, pooling {m['pooling']}, FiLM {m['film']}",
        f"- engine: backend {m['backend']}, precision {m['precision']}",
        f"- weights: sha256 {m['weights_sha256']} from {m['weights_source']}{random}",
        f"- test set: {m['n_test_total']} clips in total ({sizes})",
        _trained_line(m),
    ]


def _trained_line(m: dict) -> str:
    """How many rows the scored models were trained on (absent from reports before this field existed)."""
    n_train = m.get("n_train") or {}
    if not n_train:
        return "- trained on: (not recorded)"
    sizes = train_sizes_text(n_train)
    return f"- scored heads trained on: {sizes} examples per partition (protocol {m.get('protocol')})"


def write_run_dir(
    report: dict,
    results: Sequence[RunResult],
    out_dir: str | Path,
    label_names: Sequence[str],
    *,
    features: np.ndarray | None = None,
    labels: Sequence[int] | None = None,
) -> dict[str, Path]:
    """Write results.json, results.csv, summary.md and one confusion_<head>.png; return their paths.

    With ``features`` (N, D) and their (N,) ``labels`` it also draws the embedding map
    (``evaluate._embedding_map``: ``embedding_tsne.png`` or ``embedding_umap.png``, key ``embedding_map``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for head in report["heads"]:
        matrix = np.sum([r.confusion for r in results if r.head == head], axis=0)
        name = f"confusion_{head}.png"
        random = bool(report["measured"]["random_weights"])
        title = confusion_title(report["task"]["name"], head, leaky=report["leaky"], random_weights=random)
        plot_confusion(matrix, label_names, out / name, title)
        images[head] = name
    extra: dict[str, Path] = {}
    if features is not None and labels is not None:
        embedding = write_embedding_map(
            features, labels, label_names, out, task=report["task"]["name"], measured=report["measured"]
        )
        extra = {"embedding_map": embedding} if embedding is not None else {}
    paths = {"json": out / "results.json", "csv": out / "results.csv", "markdown": out / "summary.md"}
    atomic_write_text(paths["json"], json.dumps(json_safe(report), indent=2, allow_nan=False))
    _csv_frame(report).to_csv(paths["csv"], index=False)
    atomic_write_text(paths["markdown"], _markdown(report, images, extra.get("embedding_map")))
    return {**paths, **{f"confusion_{h}": out / n for h, n in images.items()}, **extra}


def read_results(path: str | Path) -> dict:
    """Read a results.json, refusing a format_version this package does not know."""
    data = json.loads(Path(path).read_text())
    check_format_version(
        data.get("format_version"),
        READABLE_VERSIONS,
        what=f"the results file {path}",
        error=ArtifactMismatchError,
        fix="Re-run the evaluation with this audiosep-kit.",
    )
    return data
