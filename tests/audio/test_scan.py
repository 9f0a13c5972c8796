"""Folder scans: every entry is either a file to decode or skipped with its reason; nothing vanishes."""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosep_kit.audio import AUDIO_EXTENSIONS, FolderScan, SkippedFile, audio_files, scan_audio_folder
from audiosep_kit.audio import _scan as scan_module
from audiosep_kit.errors import AudioDecodeError

AV_HINT = "needs PyAV (pip install 'audiosep-kit[av]', or pip install av)"


def _touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """Audio (nested, upper-case, hidden, linked), non-audio, and every kind of entry a walk can trip on."""
    root = tmp_path / "corpus"
    sf.write(_touch(root / "a.wav"), np.zeros(100, np.float32), 16000)
    _touch(root / "sub" / "b.flac")
    _touch(root / "sub" / "deeper" / "C.WAV")
    _touch(root / "sub" / "deeper" / "clip.m4a")
    _touch(root / "radio.aac")
    _touch(root / ".hidden.wav")
    _touch(root / ".DS_Store")
    _touch(root / "notes.txt")
    _touch(root / ".git" / "config")
    (root / "link_ok.wav").symlink_to(root / "a.wav")
    (root / "dangling.wav").symlink_to(root / "missing.wav")
    (root / "loop1.wav").symlink_to(root / "loop2.wav")
    (root / "loop2.wav").symlink_to(root / "loop1.wav")
    (root / "dirlink").symlink_to(root / "sub")
    os.mkfifo(root / "pipe.wav")
    return root


def _reasons(scan: FolderScan) -> dict[str, str]:
    return {str(s.path.relative_to(scan.folder)): s.reason for s in scan.skipped}


def _files(scan: FolderScan) -> list[str]:
    return [str(p.relative_to(scan.folder)) for p in scan.files]


def test_every_entry_is_a_file_or_skipped_with_its_reason(tree):
    """Audio endings (any case, hidden, linked) are files; each other entry has its reason."""
    scan = scan_audio_folder(tree)
    assert _files(scan) == [
        ".hidden.wav",
        "a.wav",
        "link_ok.wav",
        "radio.aac",
        "sub/b.flac",
        "sub/deeper/C.WAV",
        "sub/deeper/clip.m4a",
    ]
    assert _reasons(scan) == {
        ".DS_Store": "no file extension",
        ".git/config": "no file extension",
        "dangling.wav": f"dangling symlink (to {tree / 'missing.wav'}, which does not exist)",
        "dirlink": "symlink to a folder (not followed; pass the folder itself to include it)",
        "loop1.wav": "symlink loop",
        "loop2.wav": "symlink loop",
        "notes.txt": "unknown extension .txt",
        "pipe.wav": "not a regular file (a FIFO)",
    }
    walked = {Path(d, name) for d, dirs, names in os.walk(tree) for name in names + [x for x in dirs if x == "dirlink"]}
    assert walked == set(scan.files) | {s.path for s in scan.skipped}, "an entry was neither a file nor skipped"


def test_files_are_what_a_plain_walk_found(tree):
    """No regression for list callers: the files are exactly rglob's audio files, in sorted(Path) order."""
    plain = sorted(p for p in tree.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    assert list(scan_audio_folder(tree).files) == plain == audio_files(tree)


def test_without_pyav_m4a_and_aac_are_listed_with_the_hint(tree, monkeypatch):
    """PyAV missing (its import fails): .m4a/.aac are not files to decode but skipped, with the install hint."""
    monkeypatch.setitem(sys.modules, "av", None)
    scan = scan_audio_folder(tree)
    assert "radio.aac" not in _files(scan) and "sub/deeper/clip.m4a" not in _files(scan)
    assert _reasons(scan)["radio.aac"] == f"unsupported format .aac: {AV_HINT}"
    assert _reasons(scan)["sub/deeper/clip.m4a"] == f"unsupported format .m4a: {AV_HINT}"


def test_other_extensions_can_be_asked_for(tree):
    """``extensions`` narrows the walk; what it leaves out is skipped as an unknown extension."""
    scan = scan_audio_folder(tree, extensions=(".flac",))
    assert _files(scan) == ["sub/b.flac"]
    assert _reasons(scan)["a.wav"] == "unknown extension .wav"


def test_unreadable_file_is_skipped(tree, monkeypatch):
    """A file whose open fails (here, as if permission were denied) is skipped with the OS's reason."""
    real_open = open

    def guarded_open(path, *args, **kwargs):
        if Path(path).name == "b.flac":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(scan_module, "open", guarded_open, raising=False)
    scan = scan_audio_folder(tree)
    assert _reasons(scan)["sub/b.flac"] == "unreadable (permission denied)"
    assert "sub/b.flac" not in _files(scan)


def test_unlistable_folder_is_reported(tree, monkeypatch):
    """A folder that cannot be listed is reported (its files unknown), the rest of the walk goes on."""
    real_scandir = os.scandir

    def guarded_scandir(path):
        if Path(path).name == "deeper":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(scan_module.os, "scandir", guarded_scandir)
    scan = scan_audio_folder(tree)
    assert _reasons(scan)["sub/deeper"] == "unreadable folder (permission denied): its files were not listed"
    assert "sub/b.flac" in _files(scan) and not any(f.startswith("sub/deeper/") for f in _files(scan))


@pytest.fixture
def permissions_enforced(tmp_path) -> None:
    """Skip where permission bits are not enforced (root with CAP_DAC_OVERRIDE reads a mode-000 file)."""
    probe = _touch(tmp_path / "probe")
    probe.chmod(0)
    try:
        probe.read_bytes()
    except PermissionError:
        return
    finally:
        probe.chmod(0o644)
    pytest.skip("permission bits are not enforced here (root); run without CAP_DAC_OVERRIDE to exercise them")


def test_real_permissions(tree, permissions_enforced):
    """With real permission bits: a mode-000 file and a mode-000 folder are reported."""
    (tree / "a.wav").chmod(0)
    (tree / "sub" / "deeper").chmod(0)
    try:
        reasons = _reasons(scan_audio_folder(tree))
    finally:
        (tree / "a.wav").chmod(0o644)
        (tree / "sub" / "deeper").chmod(0o755)
    assert reasons["a.wav"] == "unreadable (permission denied)"
    assert reasons["sub/deeper"].startswith("unreadable folder (permission denied)")


def test_a_folder_is_required(tmp_path):
    """The scan refuses a missing folder or a file; audio_files keeps answering [] for list callers."""
    with pytest.raises(AudioDecodeError, match=re.escape(str(tmp_path / "nope")) + r": no such folder"):
        scan_audio_folder(tmp_path / "nope")
    with pytest.raises(AudioDecodeError, match=r"x\.wav: no such folder"):
        scan_audio_folder(_touch(tmp_path / "x.wav"))
    assert audio_files(tmp_path / "nope") == []


def test_skipped_entries_are_plain_records(tree):
    """SkippedFile is a frozen (path, reason) pair: ready for a report row or a manifest entry."""
    first = scan_audio_folder(tree).skipped[0]
    assert isinstance(first, SkippedFile) and first == SkippedFile(first.path, first.reason)
    with pytest.raises(AttributeError, match="cannot assign"):
        first.reason = "x"  # type: ignore[misc]
