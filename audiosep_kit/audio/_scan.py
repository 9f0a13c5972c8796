"""Folder walks that drop nothing silently: the files to decode, and every other entry with the reason.

A candidate is every entry below the folder that is not a real directory: regular files, symlinks of any
kind (to files, to folders, dangling, looping), FIFOs, sockets and devices. Hidden files are candidates
too: ``._clip.wav`` (macOS resource forks) has an audio ending and is decoded (and then refused by name
if it is not audio), and a ``.DS_Store`` is listed as skipped; a scan that hid dotfiles would hide audio.
Hidden folders are walked like any other. Folders it cannot list are reported, not passed over.

Symlinks to folders are not followed (one could loop, or pull in a whole disk); they are reported, so
pass the target itself to include it. This keeps exactly the files a plain ``rglob`` walk found.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from audiosep_kit.audio._av import AV_EXTENSIONS, import_av, unsupported_reason
from audiosep_kit.audio._io import AUDIO_EXTENSIONS
from audiosep_kit.errors import AudioDecodeError

_UNKNOWN_ENDING, _NO_ENDING = "unknown extension", "no file extension"
_KINDS = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}


@dataclass(frozen=True)
class SkippedFile:
    """An entry a folder scan saw and will not decode, and why (a line for a report or a manifest)."""

    path: Path
    reason: str

    @property
    def not_audio(self) -> bool:
        """True for a readable entry whose ending is simply not audio (a README, labels.csv): listed, but
        not a lost input. Links that lead nowhere, unreadable entries and undecodable audio are lost inputs."""
        return self.reason.startswith((_UNKNOWN_ENDING, _NO_ENDING))


@dataclass(frozen=True)
class FolderScan:
    """What a folder holds: the audio files to decode and everything else, each sorted by path."""

    folder: Path
    files: tuple[Path, ...]
    skipped: tuple[SkippedFile, ...]


def scan_audio_folder(folder: str | Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> FolderScan:
    """Every candidate below ``folder`` (recursive): ``files`` to decode, ``skipped`` with a reason each.

    ``files`` are readable regular files (or symlinks to them) whose lower-cased ending is in
    ``extensions``; .m4a/.aac count only while PyAV can be imported. Paths are as found (not resolved),
    in the order of ``sorted(Path)``. Raises AudioDecodeError when ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise AudioDecodeError(f"{root}: no such folder (a folder scan needs a directory).")
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    with_av = import_av() is not None
    for path, reason in _entries(root):
        reason = reason or _file_reason(path, extensions, with_av)
        if reason:
            skipped.append(SkippedFile(path, reason))
        else:
            files.append(path)
    return FolderScan(root, tuple(sorted(files)), tuple(sorted(skipped, key=lambda s: s.path)))


def audio_files(folder: str | Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[Path]:
    """The files of :func:`scan_audio_folder`, for callers that only want the list; a path that is not a
    folder gives []. Whoever reports inputs should call the scan and show its ``skipped``."""
    if not Path(folder).is_dir():
        return []
    return list(scan_audio_folder(folder, extensions).files)


def _entries(root: Path) -> Iterator[tuple[Path, str]]:
    """Every non-directory entry below ``root`` with '' (to classify), and unlistable folders with a reason.
    Real directories are descended; symlinks are never followed here."""
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            yield folder, f"unreadable folder ({_os_reason(exc)}): its files were not listed"
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            else:
                yield Path(entry.path), ""


def _file_reason(path: Path, extensions: tuple[str, ...], with_av: bool) -> str:
    """'' when ``path`` is a file to decode, else why not (link, kind, ending and readability, in that order)."""
    reason = _target_reason(path)
    if reason:
        return reason
    suffix = path.suffix.lower()
    if suffix not in extensions:
        return f"{_UNKNOWN_ENDING} {suffix}" if suffix else _NO_ENDING
    if suffix in AV_EXTENSIONS and not with_av:
        return unsupported_reason(suffix)
    return _readable_reason(path)


def _target_reason(path: Path) -> str:
    """Why what ``path`` names (through any symlink) is not a regular file, or ''."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if exc.errno == errno.ENOENT and path.is_symlink():
            return f"dangling symlink (to {os.readlink(path)}, which does not exist)"
        return f"cannot stat ({_os_reason(exc)})"
    if stat.S_ISDIR(mode):
        return "symlink to a folder (not followed; pass the folder itself to include it)"
    if stat.S_ISREG(mode):
        return ""
    kind = next((name for test, name in _KINDS.items() if test(mode)), f"mode {stat.filemode(mode)}")
    return f"not a regular file ({kind})"


def _readable_reason(path: Path) -> str:
    """'' when ``path`` opens for reading (a real open: permissions, ACLs, mounts), else why not."""
    try:
        with open(path, "rb"):
            return ""
    except OSError as exc:
        return f"unreadable ({_os_reason(exc)})"


def _os_reason(exc: OSError) -> str:
    """'permission denied' and the like: the OS's words, lower-cased, without the path it repeats."""
    return (exc.strerror or type(exc).__name__).lower()
