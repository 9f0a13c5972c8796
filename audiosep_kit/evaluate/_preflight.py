"""Check that a task's examples can run its protocol, before anything is extracted or trained.

A cut-down dataset (``--allow-missing`` on a sample, a partial copy) used to fail deep inside
scikit-learn after minutes of extraction (ICBHI with one training patient: "Cannot have number of
splits n_splits=5 greater than the number of groups: 1"), or to run a benchmark smaller than the
real one without saying so. :func:`check_examples` builds the protocol's partitions from the
examples alone (labels, splits, groups: no features needed) and refuses, listing what is present
and what is missing, when any partition cannot train, select or test. A fold task with some folds
absent but at least three present still runs, with a note saying which folds it lacks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from audiosep_kit.errors import DatasetError
from audiosep_kit.evaluate._partitions import UNGROUPED
from audiosep_kit.evaluate._protocols import EvalOptions, Protocol
from audiosep_kit.evaluate.tasks import Example, Task
from audiosep_kit.evaluate.tasks._common import shown


def present_summary(task: Task, examples: Sequence[Example]) -> str:
    """What the examples hold: per split or fold, its count and classes; and what the task lacks."""
    counts = Counter(e.split for e in examples)
    kind = "fold" if task.protocol == "folds" else "split"
    parts = []
    for split in task.splits:
        chosen = [e for e in examples if e.split == split]
        if chosen:
            groups = {e.group for e in chosen if e.group is not None}
            n_classes = len({e.label for e in chosen})
            part = f"{kind} {split}: {len(chosen)} examples, {n_classes} of {task.num_classes} classes"
            parts.append(part + (f", {len(groups)} groups" if groups else ""))
    absent = [split for split in task.splits if not counts[split]]
    text = "; ".join(parts) or "no examples"
    return text + (f"; no examples in {kind}(s) {', '.join(absent)}" if absent else "")


def _fix(allow_missing: bool) -> str:
    if allow_missing:
        return (
            "--allow-missing was given, so absent audio was skipped: complete the dataset (or point --data-root at "
            "a complete copy), or evaluate a csv:PATH task that defines splits your files can fill"
        )
    return "give data that fills every split or fold the protocol needs (see docs/custom-datasets.md)"


def _refuse(
    task: Task, protocol: Protocol, examples: Sequence[Example], problem: str, allow_missing: bool
) -> DatasetError:
    return DatasetError(
        f"{task.name}: the {protocol.name} protocol cannot run on these {len(examples)} examples: {problem}. "
        f"Present: {present_summary(task, examples)}. Fix: {_fix(allow_missing)}."
    )


def check_examples(
    task: Task,
    examples: Sequence[Example],
    protocol: Protocol,
    *,
    options: EvalOptions | None = None,
    seeds: Sequence[int] = (0,),
    allow_missing: bool = False,
) -> list[str]:
    """Refuse (DatasetError) examples the protocol cannot evaluate; return notes on a reduced evaluation.

    Every partition of every seed is built as the evaluation will build it; each must have training
    rows of at least 2 classes, and validation and test rows.
    """
    options = options or EvalOptions()
    if not examples:
        raise _refuse(task, protocol, examples, "there are no examples", allow_missing)
    y = np.array([e.label for e in examples])
    ungrouped: list[str] = []
    for seed in seeds:
        try:
            partitions = protocol.partitions(examples, task, seed, options)
        except ValueError as exc:  # the protocol's own ConfigError, or scikit-learn's splitters
            raise _refuse(task, protocol, examples, str(exc).rstrip("."), allow_missing) from exc
        for part in partitions:
            classes = sorted(set(y[part.train].tolist()))
            if len(classes) < 2:
                names = [task.label_names[c] for c in classes]
                raise _refuse(
                    task, protocol, examples,
                    f"{part.name}: the training rows hold {len(classes)} class(es) {names}; a head needs at least 2",
                    allow_missing,
                )  # fmt: skip
            if not len(part.val) or not len(part.test):
                raise _refuse(task, protocol, examples, f"{part.name}: no validation or no test rows", allow_missing)
            if UNGROUPED in part.val_source and part.name not in ungrouped:
                ungrouped.append(part.name)
    notes = _notes(task, examples, protocol)
    if ungrouped:
        notes.append(
            f"{', '.join(ungrouped)}: the training rows come from one {task.name} recording group, so validation "
            "was carved without groups; it shares groups with training and selection may be optimistic"
        )
    return notes


def _notes(task: Task, examples: Sequence[Example], protocol: Protocol) -> list[str]:
    """What makes this evaluation smaller than the task's full one (folds absent, classes never tested)."""
    notes = []
    present = {e.split for e in examples}
    if protocol.kind == "folds":
        absent = [fold for fold in task.splits if fold not in present]
        if absent:
            notes.append(
                f"reduced evaluation: folds {', '.join(absent)} of {task.name} have no examples, so "
                f"{len(task.splits) - len(absent)} of {len(task.splits)} folds were evaluated; the scores are "
                "not comparable with full-dataset results"
            )
    untested = sorted(set(range(task.num_classes)) - {e.label for e in examples if e.split == "test"})
    if protocol.kind == "split" and untested:
        names = [task.label_names[c] for c in untested]
        notes.append(f"{len(untested)} classes have no test examples and are never scored: {shown(names)}")
    return notes
