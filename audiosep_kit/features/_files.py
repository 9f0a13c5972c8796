"""The store's files on disk: the feature matrix, the journal, and the run lock.

Why no memory map for writing: a write through a memory map into a file system that is full
kills the process with SIGBUS, with no message and no chance to say which store. Rows are
written with ``os.pwrite`` into a file whose every byte was written at creation, so a full disk
surfaces as an ``OSError`` (ENOSPC) that the store turns into a clear error, and a rerun resumes.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from filelock import FileLock, Timeout

from audiosep_kit.errors import StoreError

_LOCK, _OWNER = ".lock", ".lock-owner.json"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
#: Rows of NaN written per block when a matrix is created (bounded memory for any N).
_CREATE_ROWS = 4096


def create_matrix(path: Path, rows: int, dim: int) -> None:
    """Write an .npy float32 (rows, dim) of NaN with ordinary writes (every block allocated now)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": (rows, dim)}
    block = np.full((min(rows, _CREATE_ROWS), dim), np.nan, dtype="<f4")
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for start in range(0, rows, _CREATE_ROWS):
            fh.write(block[: min(_CREATE_ROWS, rows - start)].tobytes())
        fh.flush()
        os.fsync(fh.fileno())


class MatrixWriter:
    """Writes whole rows of an existing .npy float32 matrix in place (see module docstring)."""

    def __init__(self, path: Path):
        self._fh = open(path, "r+b")
        version = np.lib.format.read_magic(self._fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(self._fh)
        if dtype != np.dtype("<f4") or len(shape) != 2:
            raise StoreError(f"{path}: expected a float32 (N, D) matrix; found {dtype} {shape}.")
        self.shape = shape
        self._offset = self._fh.tell()
        self._row_bytes = shape[1] * 4

    def write(self, row: int, vector: np.ndarray) -> None:
        data = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
        if data.shape[0] != self.shape[1]:
            raise StoreError(f"row {row}: a feature vector of {data.shape[0]} values for a store of {self.shape[1]}.")
        os.pwrite(self._fh.fileno(), data.tobytes(), self._offset + row * self._row_bytes)

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def commit_rows(
    writer: MatrixWriter, journal: IO[str], records: dict[int, dict], vectors: dict[int, np.ndarray]
) -> None:
    """Write a chunk's rows (NaN where ``records`` says error), fsync them, then append and fsync their
    journal lines in ``records`` order: a journal line always means its row's bytes are on disk."""
    nan = np.full(writer.shape[1], np.nan, dtype=np.float32)
    for row, record in records.items():
        # a recomputed row that now fails must not keep old features
        writer.write(row, vectors[row] if record["status"] == "ok" else nan)
    writer.sync()
    journal.write("".join(json.dumps({"row": row, **record}) + "\n" for row, record in records.items()))
    journal.flush()
    os.fsync(journal.fileno())


@contextmanager
def full_disk_names_store(root: Path) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) into a StoreError naming the store and saying a rerun resumes."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise StoreError(
                f"no space left on the device holding the store {root} ({exc.strerror}). Free some space and "
                "rerun the same command: every row recorded so far is kept and the rest resumes."
            ) from exc
        raise


def read_journal(path: Path) -> Iterator[dict]:
    """Records of a journal in order (a later line for a row supersedes an earlier one)."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill: its rows are simply done again
            if isinstance(record, dict) and isinstance(record.get("row"), int):
                yield record


def drop_torn_tail(path: Path) -> None:
    """Cut a last line left half-written by a kill, so appended lines start on a fresh line."""
    if not path.is_file():
        return
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "r+b") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        # Look back in blocks for the last newline (a journal can be large; never read it whole).
        position = size
        while position > 0:
            start = max(0, position - 65536)
            fh.seek(start)
            block = fh.read(position - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                fh.truncate(start + cut + 1)
                return
            position = start
        fh.truncate(0)


@contextmanager
def store_lock(root: Path) -> Iterator[None]:
    """Hold the store's exclusive run lock, or refuse at once naming the run that holds it.

    The lock is an OS file lock (``filelock``; released by the kernel if the holder is killed),
    so a crashed run never leaves a stale lock behind.
    """
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / _LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StoreError(
            f"{root} is being written by another extraction ({_owner(root)}). Wait for it to finish, or "
            "use another --out; --overwrite is refused too while that run holds the store."
        ) from None
    try:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        (root / _OWNER).write_text(json.dumps(owner), encoding="utf-8")
        yield
    finally:
        lock.release()


def _owner(root: Path) -> str:
    try:
        owner = json.loads((root / _OWNER).read_text(encoding="utf-8"))
        return f"pid {owner['pid']} on {owner['host']}, since {owner['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"
