"""LibriSpeech speaker identification over the speakers of ``train-clean-100`` (closed set).

Layout (the OpenSLR release): ``librispeech/LibriSpeech/train-clean-100/<speaker>/<chapter>/`` holding
``<speaker>-<chapter>-<nnnn>.flac`` and ``<speaker>-<chapter>.trans.txt``, whose lines name the
utterances (the metadata: an utterance listed there whose .flac is absent is missing data).

No standard split exists for speaker identification on LibriSpeech, so this one is defined here and
published by checksum (``split_manifest``):

* for each speaker, order its utterance ids by the SHA-1 of the id (a stable shuffle that does not
  depend on the other speakers, the file system or a random seed);
* the first ``n_eval = max(1, n // 10)`` of that order are ``test``, the next ``n_eval`` ``valid``, the
  rest ``train`` (so 80/10/10 per speaker, and every speaker with >= 3 utterances is in all three
  splits, which closed-set identification needs); a speaker with fewer than 3 utterances is all train.

The split is computed over the utterances the transcripts list, before missing audio is dropped, so
``allow_missing=True`` never moves an utterance to another split. Utterances of one chapter land in
every split by design (a per-utterance closed-set protocol); the only source kept on one side is the
utterance itself, so ``group`` is the utterance id.

Label names are the speaker ids found under ``train-clean-100`` as strings, sorted numerically (251 in
the full release): they come from the data, so use ``resolve_task`` for the task's label names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from audiosep_kit.evaluate.tasks._common import INCOMPLETE_FIX, DataLocation, keep_present, shown
from audiosep_kit.evaluate.tasks._task import Example, Task

SUBSET = "train-clean-100"
_SPLITS = ("train", "valid", "test")


def subset_folder(location: DataLocation) -> Path:
    """``<folder>/LibriSpeech/train-clean-100``, or ``<folder>/train-clean-100`` (task_root = LibriSpeech/)."""
    candidates = (location.folder / "LibriSpeech" / SUBSET, location.folder / SUBSET)
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise location.error(f"subset folder not found: looked for {candidates[0]} and {candidates[1]}")


def speaker_ids(location: DataLocation) -> tuple[str, ...]:
    """Speaker ids (folder names) under train-clean-100, sorted numerically."""
    folder = subset_folder(location)
    names = (entry.name for entry in folder.iterdir() if entry.is_dir() and entry.name.isdigit())
    speakers = sorted(names, key=int)
    if len(speakers) < 2:
        raise location.error(f"speaker identification needs >= 2 speaker folders in {folder}; got {speakers}")
    return tuple(speakers)


def split_of_speaker(utterances: list[str]) -> dict[str, str]:
    """The split of each utterance of one speaker (see the module docstring for the rule)."""
    order = sorted(utterances, key=lambda utt: (hashlib.sha1(utt.encode("utf-8")).hexdigest(), utt))
    n_eval = max(1, len(order) // 10) if len(order) >= 3 else 0
    splits = ["test"] * n_eval + ["valid"] * n_eval + ["train"] * (len(order) - 2 * n_eval)
    return dict(zip(order, splits, strict=True))


def _chapter_utterances(chapter: Path, location: DataLocation) -> list[str] | None:
    """Utterance ids listed in a chapter's transcript, or None when it has no transcript."""
    transcript = chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt"
    if not transcript.is_file():
        return None
    lines = transcript.read_text(encoding="utf-8").splitlines()
    utterances = [line.split(maxsplit=1)[0] for line in lines if line.strip()]
    prefix = f"{chapter.parent.name}-{chapter.name}-"
    wrong = [utt for utt in utterances if not utt.startswith(prefix)]
    if wrong:
        raise location.error(f"{transcript} lists utterances of another chapter: {shown(wrong)}")
    return utterances


def _speaker_examples(speaker: Path, label: int, location: DataLocation, untranscribed: list[str]) -> list[Example]:
    """A speaker's transcribed utterances, split by ``split_of_speaker``; notes untranscribed chapters."""
    folders = (entry for entry in speaker.iterdir() if entry.is_dir() and entry.name.isdigit())
    chapters = sorted(folders, key=lambda chapter: int(chapter.name))
    paths: dict[str, Path] = {}
    for chapter in chapters:
        utterances = _chapter_utterances(chapter, location)
        if utterances is None:
            untranscribed.append(str(chapter))
            continue
        paths.update((utt, chapter / f"{utt}.flac") for utt in sorted(utterances))
    split = split_of_speaker(list(paths))
    return [Example(path, label, split[utt], group=utt) for utt, path in paths.items()]


def read_librispeech_speaker(
    task: Task, location: DataLocation, *, allow_missing: bool, check_audio: bool
) -> list[Example]:
    """Every transcribed utterance of train-clean-100; labels index ``speaker_ids(location)``."""
    folder = subset_folder(location)
    untranscribed: list[str] = []
    examples: list[Example] = []
    for label, speaker in enumerate(speaker_ids(location)):
        examples += _speaker_examples(folder / speaker, label, location, untranscribed)
    if untranscribed and not allow_missing:
        raise location.error(
            f"{len(untranscribed)} chapter folder(s) have no <speaker>-<chapter>.trans.txt, "
            f"e.g. {shown(untranscribed)}",
            fix=INCOMPLETE_FIX,
        )
    return keep_present(
        examples,
        location,
        listed_in=f"the *.trans.txt files under {folder}",
        allow_missing=allow_missing,
        check_audio=check_audio,
    )


def split_manifest(examples: list[Example]) -> str:
    """SHA-256 of the sorted ``utterance<TAB>speaker<TAB>split`` lines: publish it beside the results.

    Two runs used the same speaker-identification split iff their manifests match; the speaker is
    read from the utterance id (``<speaker>-<chapter>-<nnnn>``), so the checksum does not depend on
    paths or label numbering.
    """
    lines = sorted(f"{ex.path.stem}\t{ex.path.stem.split('-', 1)[0]}\t{ex.split}\n" for ex in examples)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


LIBRISPEECH_SPEAKER = Task(
    name="librispeech-speaker",
    # Placeholder: the real label names are the speaker folders found in the data (resolve_task()).
    label_names=("<speaker ids of train-clean-100>", "<resolved from the data by resolve_task()>"),
    protocol="split",
    splits=_SPLITS,
    description=(
        "LibriSpeech train-clean-100 speaker identification (251 speakers), per-speaker 80/10/10 "
        "utterance split by SHA-1 order; label names come from the data (resolve_task)."
    ),
    data_dir="librispeech",
    reader=read_librispeech_speaker,
    labels_from_data=speaker_ids,
)
