"""The task registry: names, lookup errors, where data is looked for, and the missing-data refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiosep_kit.errors import ConfigError, DatasetError
from audiosep_kit.evaluate.tasks import (
    DATA_ROOT_ENV,
    TASKS,
    get_task,
    load_examples,
    load_metadata,
    resolve_task,
)
from audiosep_kit.evaluate.tasks._task import Task

EXPECTED_TASKS = {
    "esc50", "esc10", "urbansound8k", "icbhi", "icbhi-2class", "nsynth", "librispeech-speaker",
    "speechcommands-v2", "speechcommands-v1", "speechcommands-v2-12", "speechcommands-v1-12", "demo-words",
}  # fmt: skip


def test_registry_lists_every_task_under_its_own_name() -> None:
    """Each registered Task is keyed by its own name, and every task has a dataset reader."""
    assert set(TASKS) == EXPECTED_TASKS
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name and task.reader is not None
        assert task.data_dir, f"{name} has no data_dir"


def test_fold_and_split_tasks_declare_their_protocol() -> None:
    """Fold tasks use numbered folds, split tasks train/(valid)/test, as the protocol engineer expects."""
    assert TASKS["esc50"].splits == ("1", "2", "3", "4", "5")
    assert TASKS["urbansound8k"].splits == tuple(str(fold) for fold in range(1, 11))
    assert {TASKS[name].protocol for name in ("esc50", "esc10", "urbansound8k")} == {"folds"}
    assert TASKS["icbhi"].splits == ("train", "test")
    for name in ("nsynth", "librispeech-speaker", "speechcommands-v2", "speechcommands-v1-12"):
        assert TASKS[name].protocol == "split" and TASKS[name].splits == ("train", "valid", "test")


def test_task_scores_are_registered_scores() -> None:
    """Every task names only scores the metrics registry knows; ICBHI's primary score is the challenge's."""
    metrics = pytest.importorskip("audiosep_kit.evaluate._metrics")
    for task in TASKS.values():
        assert set(task.scores) <= set(metrics.SCORES), task.name
    assert TASKS["icbhi"].scores[0] == TASKS["icbhi-2class"].scores[0] == "icbhi_score"


def test_get_task_unknown_name_lists_valid_names() -> None:
    """An unknown task name is a ConfigError naming the valid ones."""
    assert get_task("esc50") is TASKS["esc50"]
    with pytest.raises(ConfigError, match=r"`task` must be one of \{.*'esc50'.*\}; got 'esc-50'"):
        get_task("esc-50")
    with pytest.raises(ConfigError, match="must be one of"):
        load_examples("no-such-task", "/nonexistent")


def test_no_data_root_names_flag_and_env_var() -> None:
    """Without data_root, task_root or the environment variable, the error says how to give one."""
    with pytest.raises(DatasetError, match=rf"no data root given.*--data-root.*\${DATA_ROOT_ENV}"):
        load_examples("esc50")


def test_empty_data_root_names_the_folder_looked_for(tmp_path: Path) -> None:
    """An empty data root fails with the dataset folder it looked for and what to change."""
    with pytest.raises(DatasetError, match=r"dataset folder not found: looked for .*esc50 .*--data-root"):
        load_examples("esc50", tmp_path)


def test_env_var_is_used_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$AUDIOSEP_DATA_ROOT is the fallback data root, and errors say it was the one used."""
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    with pytest.raises(DatasetError, match=rf"chosen by \${DATA_ROOT_ENV}="):
        load_examples("urbansound8k")


def test_task_root_overrides_and_is_named(tmp_path: Path) -> None:
    """task_root is the dataset folder itself; a missing one is reported as the task_root override."""
    with pytest.raises(DatasetError, match=r"dataset folder not found: .*nowhere.*task_root="):
        load_examples("esc50", tmp_path, task_root=tmp_path / "nowhere")
    (tmp_path / "my-esc").mkdir()
    with pytest.raises(DatasetError, match=r"metadata file not found: .*my-esc.*esc50\.csv"):
        load_examples("esc50", "/nonexistent", task_root=tmp_path / "my-esc")


def test_speech_commands_v1_accepts_the_sc09_folder_name(tmp_path: Path) -> None:
    """v0.01 is found as speech_commands_v1/ or speech_commands_sc09/; the error names both."""
    with pytest.raises(DatasetError, match=r"speech_commands_v1 or .*speech_commands_sc09"):
        load_examples("speechcommands-v1", tmp_path)
    (tmp_path / "speech_commands_sc09").mkdir()
    with pytest.raises(DatasetError, match=r"official list validation_list\.txt not found.*v1_lists"):
        load_examples("speechcommands-v1", tmp_path)


def test_nothing_to_evaluate_is_refused(tmp_path: Path) -> None:
    """A folder with the metadata but no examples at all is refused, even with allow_missing."""
    folder = tmp_path / "speech_commands_v2"
    folder.mkdir()
    for name in ("validation_list.txt", "testing_list.txt"):
        (folder / name).write_text("", encoding="utf-8")
    with pytest.raises(DatasetError, match="no examples found"):
        load_examples("demo-words", tmp_path, allow_missing=True)


def test_resolve_task_is_identity_for_fixed_label_sets() -> None:
    """resolve_task reads no data for tasks whose label set is fixed."""
    data_defined = {name for name, task in TASKS.items() if task.labels_from_data is not None}
    assert data_defined == {"librispeech-speaker"}
    for name in set(TASKS) - data_defined:
        assert resolve_task(name, "/nonexistent") is TASKS[name]


def test_load_metadata_equals_check_audio_false(shared_data: Path) -> None:
    """load_metadata is load_examples(check_audio=False): every metadata row, audio or not."""
    assert load_metadata("esc50", shared_data) == load_examples("esc50", shared_data, check_audio=False)
