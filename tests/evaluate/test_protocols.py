"""Protocols: partitions, selection on validation only, and proof that test rows never reach selection."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from audiosep_kit.errors import BackendUnavailableError, ConfigError
from audiosep_kit.evaluate._heads import HEADS, HeadSpec, LinearHead, MLP3Head
from audiosep_kit.evaluate._partitions import (
    EVAR_VAL_FRACTION,
    carve_validation,
    evar_partitions,
    hear_partitions,
    seed_partitions,
    split_partitions,
)
from audiosep_kit.evaluate._protocols import PROTOCOLS, EvalOptions, evaluate, resolve_protocol
from audiosep_kit.evaluate.tasks._task import Example, Task


def _selections(results):
    return [(r.partition, r.seed, r.selection.params, r.selection.best_epoch, r.selection.candidates) for r in results]


# ---------------------------------------------------------------- partitions


def test_hear_each_fold_is_test_once_with_the_next_fold_as_validation(toy, fold_task, fast_options):
    _, y = toy.blobs(n_per_class=10)
    examples = toy.fold_examples(y)
    parts = hear_partitions(examples, fold_task, 0, fast_options)
    assert [p.name for p in parts] == [f"fold {k}" for k in "12345"]
    assert [p.val_source for p in parts] == ["fold 2", "fold 3", "fold 4", "fold 5", "fold 1"]
    for p in parts:
        assert not set(p.train) & set(p.val) and not set(p.train) & set(p.test) and not set(p.val) & set(p.test)
        assert len(p.train) + len(p.val) + len(p.test) == len(examples)
    assert sorted(np.concatenate([p.test for p in parts])) == list(range(len(examples)))


def _recordings(n_folds=5, n_classes=4, per_fold_class=20, takes=2):
    """ESC-50-like examples: each class has ``per_fold_class`` clips per fold, cut ``takes`` at a time
    from one source recording (the group), so sibling clips share a fold and a group."""
    out = []
    for fold in range(1, n_folds + 1):
        for label in range(n_classes):
            for k in range(per_fold_class):
                group = f"src-{fold}-{label}-{k // takes}"
                out.append(Example(Path(f"{fold}-{label}-{k}.wav"), label, str(fold), group=group))
    return out


@pytest.fixture
def recordings_task():
    return Task(name="recordings", label_names=("a", "b", "c", "d"), protocol="folds", splits=tuple("12345"))


def test_evar_trains_on_every_other_fold_minus_a_grouped_stratified_tenth(recordings_task, fast_options):
    examples = _recordings()
    splits = np.array([e.split for e in examples])
    labels = np.array([e.label for e in examples])
    parts = evar_partitions(examples, recordings_task, 0, fast_options)
    assert [p.name for p in parts] == [f"fold {k}" for k in "12345"]
    for fold, part in zip("12345", parts, strict=True):
        np.testing.assert_array_equal(part.test, np.flatnonzero(splits == fold))
        np.testing.assert_array_equal(np.sort(np.concatenate([part.train, part.val])), np.flatnonzero(splits != fold))
        assert not set(part.train) & set(part.val)
        assert len(part.val) / (len(part.train) + len(part.val)) == pytest.approx(EVAR_VAL_FRACTION, abs=0.02)
        assert not {examples[i].group for i in part.train} & {examples[i].group for i in part.val}
        per_class = np.bincount(labels[part.val], minlength=4)
        assert per_class.min() >= 6 and per_class.max() <= 10  # stratified: 8 of each class's 80
        assert "StratifiedGroupKFold, 1/10" in part.val_source and part.val_source.startswith("folds ")
    again = evar_partitions(examples, recordings_task, 7, fast_options)  # the seed does not move it
    assert all(np.array_equal(a.val, b.val) for a, b in zip(parts, again, strict=True))


def test_evar_on_a_tiny_data_set_carves_fewer_folds_and_says_so(toy, fold_task, fast_options):
    _, y = toy.blobs(n_per_class=10)
    examples = [replace(e, group=None) for e in toy.fold_examples(y)]  # 8 training rows per class
    for part in evar_partitions(examples, fold_task, 0, fast_options):
        assert "StratifiedKFold, 1/8 (1/10 wanted" in part.val_source
        assert np.bincount(y[part.val], minlength=3).tolist() == [1, 1, 1]
    rare = [e for e in examples if e.label != 2 or e.path.name in ("clip20.wav", "clip21.wav", "clip22.wav")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said in val_source, not as scikit-learn's warning on stderr
        part = evar_partitions(rare, fold_task, 0, fast_options)[0]
    assert part.val_source.endswith("; a class has 2 rows: validation may lack it, random_state=0)")


def test_fold_protocols_need_three_present_folds(toy, fold_task, fast_options):
    _, y = toy.blobs(n_per_class=4)
    examples = [replace(e, split="1" if i % 2 else "2") for i, e in enumerate(toy.fold_examples(y))]
    for partitions in (hear_partitions, evar_partitions):
        with pytest.raises(ConfigError, match="at least 3 folds"):
            partitions(examples, fold_task, 0, fast_options)


def test_split_uses_the_official_valid_list(toy, split_task, fast_options):
    _, y = toy.blobs(n_per_class=20)
    examples = toy.split_examples(y)
    (part,) = split_partitions(examples, split_task, 0, fast_options)
    assert part.val_source == "official valid"
    assert {examples[i].split for i in part.val} == {"valid"}
    assert {examples[i].split for i in part.test} == {"test"}


def test_split_without_valid_carves_it_from_train_by_group(toy, carve_task, fast_options):
    _, y = toy.blobs(n_per_class=40)
    examples = toy.split_examples(y, with_valid=False)
    (part,) = split_partitions(examples, carve_task, 0, fast_options)
    assert "by group" in part.val_source
    train_groups = {examples[i].group for i in part.train}
    val_groups = {examples[i].group for i in part.val}
    assert train_groups and val_groups and not train_groups & val_groups
    assert {examples[i].split for i in np.concatenate([part.train, part.val])} == {"train"}
    assert 0.1 < len(part.val) / (len(part.train) + len(part.val)) < 0.35
    (again,) = split_partitions(examples, carve_task, 5, fast_options)  # the seed does not move it
    np.testing.assert_array_equal(part.val, again.val)


def test_carving_without_groups_is_stratified(toy):
    _, y = toy.blobs(n_per_class=20)
    examples = [replace(e, group=None) for e in toy.split_examples(y, with_valid=False)]
    rows = np.array([i for i, e in enumerate(examples) if e.split == "train"])
    train, val, how = carve_validation(examples, rows, 0.25)
    assert "no groups" in how
    assert sorted(np.bincount(y[val]).tolist()) == [4, 4, 4]


def test_one_training_group_is_carved_without_groups_and_the_description_says_so(toy):
    """A data sample whose training rows all come from one patient (ICBHI's sample) cannot be carved by
    group; the carve-out falls back to stratified rows and names the leak instead of refusing the task."""
    _, y = toy.blobs(n_per_class=20)
    examples = [replace(e, group="patient-101") for e in toy.split_examples(y, with_valid=False)]
    rows = np.array([i for i, e in enumerate(examples) if e.split == "train"])
    train, val, how = carve_validation(examples, rows, 0.25)
    assert "only 1 group" in how and "WITHOUT groups" in how
    assert len(val) and not set(train) & set(val)
    assert sorted(np.bincount(y[val]).tolist()) == [4, 4, 4]


def test_split_needs_train_and_test(toy, split_task, fast_options):
    _, y = toy.blobs(n_per_class=5)
    examples = [replace(e, split="train") for e in toy.split_examples(y)]
    with pytest.raises(ConfigError, match="no 'test' examples"):
        split_partitions(examples, split_task, 0, fast_options)


def test_seed_partition_is_a_stratified_80_20_whose_validation_is_the_test_set(toy, fold_task, fast_options):
    _, y = toy.blobs(n_per_class=20)
    examples = toy.fold_examples(y)
    (part,) = seed_partitions(examples, fold_task, 0, fast_options)
    np.testing.assert_array_equal(part.val, part.test)
    assert len(part.test) == 12 and np.bincount(y[part.test]).tolist() == [4, 4, 4]
    assert "LEAKY" in part.val_source
    (other,) = seed_partitions(examples, fold_task, 1, fast_options)
    assert not np.array_equal(part.test, other.test)


def test_official_is_evar_for_fold_tasks_and_the_official_lists_for_split_tasks(fold_task, split_task):
    assert resolve_protocol("official", fold_task) is PROTOCOLS["evar"]
    assert resolve_protocol("official", split_task) is PROTOCOLS["split"]
    with pytest.raises(ConfigError, match=r"`protocol` must be one of .*; got 'random'"):
        resolve_protocol("random", fold_task)


def test_old_names_reach_what_they_always_ran(fold_task, split_task):
    assert resolve_protocol("folds", fold_task) is PROTOCOLS["hear"]
    seed = resolve_protocol("seed-project", split_task)
    assert seed is PROTOCOLS["seed"] and seed.leaky and "LEAKY" in seed.description
    assert not any(PROTOCOLS[name].leaky for name in ("evar", "hear", "split"))
    assert "stricter than EVAR's random carve-out" in PROTOCOLS["evar"].description


def test_a_protocol_of_the_other_task_kind_is_refused_with_the_fix(fold_task, split_task):
    with pytest.raises(ConfigError, match=r"protocol 'evar' runs on folds tasks; .* Fix: --protocol official"):
        resolve_protocol("evar", split_task)
    with pytest.raises(ConfigError, match=r"protocol 'split' runs on split tasks; .*\['evar', 'hear', 'seed'\]"):
        resolve_protocol("split", fold_task)


def test_options_validate_val_fraction():
    with pytest.raises(ConfigError, match="`val_fraction` must be in"):
        EvalOptions(val_fraction=0.7)


def test_options_validate_the_device_spelling():
    with pytest.raises(ConfigError, match=r"`device` must be one of \{'cpu', 'cuda', 'cuda:N'\}; got 'gpu'"):
        EvalOptions(device="gpu")


# ---------------------------------------------------------------- evaluation


def test_evaluate_folds_scores_every_head_partition_and_seed(toy, fold_task, fast_options):
    X, y = toy.blobs(n_per_class=20, shift=3.0)
    results = evaluate(
        X, toy.fold_examples(y), fold_task, heads=["logreg", "linear"], seeds=[0, 1], options=fast_options
    )
    assert len(results) == 2 * 5 * 2
    assert {r.head for r in results} == {"logreg", "linear"}
    assert not any(r.leaky for r in results)
    for head, floor in (("logreg", 0.85), ("linear", 0.6)):  # chance is 1/3
        assert np.mean([r.scores["accuracy"] for r in results if r.head == head]) >= floor
    first = results[0]
    assert first.selection.params in [c["params"] for c in first.selection.candidates]
    assert len(first.selection.candidates) == len(HEADS[first.head].grid)
    assert first.confusion.shape == (3, 3) and first.confusion.sum() == first.n_test


def test_evaluate_refuses_misaligned_features(toy, fold_task):
    X, y = toy.blobs(n_per_class=5)
    with pytest.raises(ConfigError, match="N = 15 examples"):
        evaluate(X[:-1], toy.fold_examples(y), fold_task, heads=["logreg"], seeds=[0])
    with pytest.raises(ConfigError, match=r"`head` must be one of .*; got 'svm'"):
        evaluate(X, toy.fold_examples(y), fold_task, heads=["svm"], seeds=[0])


def test_a_partition_whose_training_rows_hold_one_class_is_refused_by_name(toy, fold_task, fast_options):
    X, y = toy.blobs(n_per_class=5)
    examples = [replace(e, label=0 if e.split != "1" else e.label) for e in toy.fold_examples(y)]
    with pytest.raises(ConfigError, match=r"fold 1: the training rows hold only class\(es\) \[0\]"):
        evaluate(X, examples, fold_task, heads=["logreg"], seeds=[0], options=fast_options)


def test_seed_protocol_uses_100_epochs_default_params_and_says_leaky(toy, fold_task, fast_options):
    X, y = toy.blobs(n_per_class=10)
    (result,) = evaluate(
        X, toy.fold_examples(y), fold_task, heads=["linear"], seeds=[0], protocol="seed", options=fast_options
    )
    assert result.leaky and result.selection.params == {} and result.n_val == result.n_test
    assert result.val_source == "the test set itself (LEAKY)"
    assert result.selection.val_score == pytest.approx(result.scores["accuracy"])  # best TEST epoch


class _RecipeSpy(MLP3Head):
    """An MLP3Head that records the parameters it was fitted with."""

    fitted: list[dict] = []

    def fit(self, X, y, X_val=None, y_val=None):
        _RecipeSpy.fitted.append(self.get_params())
        return super().fit(X, y, X_val, y_val)


@pytest.mark.parametrize("protocol", ["seed", "evar"])
def test_the_seed_recipe_is_reached_only_under_the_seed_protocol(toy, fold_task, monkeypatch, protocol):
    monkeypatch.setitem(HEADS, "recipe-spy", HeadSpec(_RecipeSpy, HEADS["mlp3"].grid))
    monkeypatch.setattr(_RecipeSpy, "fitted", [])
    X, y = toy.blobs(n_per_class=10)
    options = EvalOptions(max_epochs=3, patience=2)
    results = evaluate(
        X, toy.fold_examples(y), fold_task, heads=["recipe-spy"], seeds=[0], protocol=protocol, options=options
    )
    seedlike = [
        p["optimizer"] == "adam" and p["whiten"] is None and p["dropout"] == 0.0 and p["max_epochs"] == 100
        for p in _RecipeSpy.fitted
    ]
    if protocol == "seed":
        assert len(results) == 1 and seedlike == [True] and _RecipeSpy.fitted[0]["patience"] is None
    else:  # every grid point of every fold, each with the evaluation's own recipe
        assert len(seedlike) == 5 * len(HEADS["mlp3"].grid) and not any(seedlike)


# ---------------------------------------------------------------- the leak proof


def _plant_test_signal(toy, X, y, examples, test_rows, seed=0):
    """Two versions of one data set that differ only on the test rows.

    Both get an extra column of noise. In the planted version the test rows are relabelled at random
    and their extra column predicts the new labels perfectly: a protocol (or a scaler) that looks at
    test rows during selection would choose differently.
    """
    rng = np.random.default_rng(seed)
    clean_X = np.concatenate([X, rng.normal(size=(len(X), 1)).astype(np.float32)], axis=1)
    planted_X = clean_X.copy()
    new = rng.permutation(y[test_rows])
    planted_X[test_rows, -1] = 10.0 * new
    return clean_X, planted_X, toy.relabel(examples, test_rows, new)


@pytest.mark.parametrize("head", ["linear", "mlp3", "logreg"])
def test_no_test_example_reaches_model_selection_in_the_split_protocol(toy, split_task, fast_options, head):
    X, y = toy.blobs(n_per_class=30, shift=1.0, dim=4)
    examples = toy.split_examples(y)
    test_rows = np.array([i for i, e in enumerate(examples) if e.split == "test"])
    clean_X, planted_X, planted_examples = _plant_test_signal(toy, X, y, examples, test_rows)
    kw = {"heads": [head], "seeds": [0, 1], "options": fast_options}
    clean = evaluate(clean_X, examples, split_task, **kw)
    planted = evaluate(planted_X, planted_examples, split_task, **kw)
    assert _selections(clean) == _selections(planted)  # grid point, epoch, every validation score
    assert [r.scores for r in clean] != [r.scores for r in planted]  # the test split did change


@pytest.mark.parametrize("protocol", ["evar", "hear"])
def test_no_test_fold_reaches_model_selection_in_the_fold_protocols(toy, fold_task, fast_options, protocol):
    X, y = toy.blobs(n_per_class=20, shift=1.0, dim=4)
    examples = toy.fold_examples(y)
    part = hear_partitions(examples, fold_task, 0, fast_options)[2]  # test fold 3 (the same in both)
    clean_X, planted_X, planted_examples = _plant_test_signal(toy, X, y, examples, part.test)
    kw = {"heads": ["linear"], "seeds": [0], "options": fast_options, "protocol": protocol}
    clean = [r for r in evaluate(clean_X, examples, fold_task, **kw) if r.partition == "fold 3"]
    planted = [r for r in evaluate(planted_X, planted_examples, fold_task, **kw) if r.partition == "fold 3"]
    assert _selections(clean) == _selections(planted)
    assert clean[0].scores != planted[0].scores


def test_the_seed_protocol_choice_does_change_when_test_changes(toy, fold_task, fast_options):
    X, y = toy.blobs(n_per_class=30, shift=1.0, dim=4)
    examples = toy.fold_examples(y)
    (part,) = seed_partitions(examples, fold_task, 0, fast_options)
    clean_X, planted_X, planted_examples = _plant_test_signal(toy, X, y, examples, part.test)
    kw = {"heads": ["linear"], "seeds": [0], "protocol": "seed", "options": fast_options}
    clean = evaluate(clean_X, examples, fold_task, **kw)
    planted = evaluate(planted_X, planted_examples, fold_task, **kw)
    assert _selections(clean) != _selections(planted)
    assert clean[0].selection.best_epoch != planted[0].selection.best_epoch


class _SpyHead(LinearHead):
    """A LinearHead that records the row ids (column 0) of everything it is fitted or validated on."""

    seen: dict[str, set] = {"fit": set(), "val": set()}

    def fit(self, X, y, X_val=None, y_val=None):
        _SpyHead.seen["fit"].update(np.asarray(X)[:, 0].astype(int).tolist())
        if X_val is not None:
            _SpyHead.seen["val"].update(np.asarray(X_val)[:, 0].astype(int).tolist())
        return super().fit(X, y, X_val, y_val)


@pytest.fixture
def spy(monkeypatch):
    monkeypatch.setitem(HEADS, "spy", HeadSpec(_SpyHead, ({"lr": 1e-2}, {"lr": 1e-3})))
    _SpyHead.seen = {"fit": set(), "val": set()}
    return _SpyHead.seen


@pytest.mark.parametrize("task_fixture", ["split_task", "carve_task"])
def test_spy_head_never_sees_a_test_row_in_official_protocols(toy, request, fast_options, spy, task_fixture):
    task = request.getfixturevalue(task_fixture)
    _, y = toy.blobs(n_per_class=20)
    examples = toy.split_examples(y, with_valid=task_fixture == "split_task")
    X = np.column_stack([np.arange(len(y)), np.random.default_rng(0).normal(size=(len(y), 3))]).astype(np.float32)
    for refit in (False, True):
        evaluate(X, examples, task, heads=["spy"], seeds=[0], options=replace(fast_options, refit=refit))
    test_ids = {i for i, e in enumerate(examples) if e.split == "test"}
    assert spy["fit"] and spy["val"]
    assert not (spy["fit"] | spy["val"]) & test_ids


def test_spy_head_sees_test_rows_as_validation_in_the_seed_protocol(toy, fold_task, fast_options, spy):
    _, y = toy.blobs(n_per_class=10)
    examples = toy.fold_examples(y)
    X = np.column_stack([np.arange(len(y)), np.random.default_rng(0).normal(size=(len(y), 3))]).astype(np.float32)
    (part,) = seed_partitions(examples, fold_task, 0, fast_options)
    evaluate(X, examples, fold_task, heads=["spy"], seeds=[0], protocol="seed", options=fast_options)
    assert spy["val"] == set(part.test.tolist())  # the leak, made visible
    assert not spy["fit"] & set(part.test.tolist())


def test_refit_trains_on_train_plus_validation_for_the_chosen_epochs(toy, split_task, fast_options, spy):
    _, y = toy.blobs(n_per_class=20)
    examples = toy.split_examples(y)
    X = np.column_stack([np.arange(len(y)), np.random.default_rng(0).normal(size=(len(y), 3))]).astype(np.float32)
    (result,) = evaluate(X, examples, split_task, heads=["spy"], seeds=[0], options=replace(fast_options, refit=True))
    train_val = {i for i, e in enumerate(examples) if e.split in ("train", "valid")}
    assert spy["fit"] == train_val
    assert result.refit and result.n_train == len(train_val)  # the scored model's rows


def test_results_record_the_device_each_head_ran_on(toy, fold_task, fast_options):
    X, y = toy.blobs(n_per_class=10, shift=3.0)
    results = evaluate(X, toy.fold_examples(y), fold_task, heads=["logreg", "linear"], seeds=[0], options=fast_options)
    assert {(r.head, r.device) for r in results} == {("logreg", "cpu"), ("linear", "cpu")}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_cuda_is_refused_before_any_head_trains(toy, fold_task, fast_options, spy):
    X, y = toy.blobs(n_per_class=10, shift=3.0)
    options = replace(fast_options, device="cuda")
    with pytest.raises(BackendUnavailableError, match=r"no CUDA device"):
        evaluate(X, toy.fold_examples(y), fold_task, heads=["logreg", "spy"], seeds=[0], options=options)
    assert not spy["fit"]


def test_logreg_alone_with_cuda_requested_runs_and_says_cpu(toy, fold_task, fast_options):
    """evaluate() itself trains only: logreg runs on the CPU and its results say so."""
    X, y = toy.blobs(n_per_class=10, shift=3.0)
    options = replace(fast_options, device="cuda")
    results = evaluate(X, toy.fold_examples(y), fold_task, heads=["logreg"], seeds=[0], options=options)
    assert {r.device for r in results} == {"cpu"}
