"""The Ray engine: a store's chunks decoded and embedded on a Ray cluster, committed by the driver.

The pipeline is Ray Data's, not a scheduler of ours: the chunks to run (the same chunks of
``chunk_size`` rows the local engine runs) -> decoding and resampling -> ``map_batches`` on an actor
pool (``ActorPoolStrategy``) whose actors each hold one FeatureExtractor, rebuilt from the driver's
``recipe`` -> results streamed back to the driver, which commits them into the store exactly as the
local engine does (rows written and fsynced, then their journal lines). Why the driver writes: a
chunk's result is small (its rows' features and journal records), the store keeps one writer under
its lock, and a resumed run uses the journal the local engine uses, so every finished chunk is kept
after a kill of the driver or a worker and only the missing ones are recomputed.

Why the same store, byte for byte: each chunk is decoded by the same ``decode_row`` and computed by
the same ``chunk_outcome`` (features._embed) as in the local engine, and rows are written at their own
offsets whatever order chunks finish in. An actor runs as many intra-op threads as CPUs it holds, and
float32 convolutions round by how their work is split between threads (~1e-7), so the bytes are the local
run's when the thread counts agree: by default both use a node's cores.

Where decoding runs: with GPU actors, in Ray tasks of one CPU each, apart from the actors (a GPU is fed
by many decoding cores; see benchmarks/README.md for the per-core rates). With CPU actors, inside the
actor, one chunk at a time: the actor holds the node's cores for the model, so separate decoding tasks
would only compete with it for them (Ray Data fuses such a stage into the actor anyway).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiosep_kit import errors
from audiosep_kit.audio import AudioSegment
from audiosep_kit.errors import AudioSepKitError, BackendUnavailableError, ConfigError, StoreError
from audiosep_kit.features._cache import extractor_identity
from audiosep_kit.features._decoding import decode_row
from audiosep_kit.features._embed import chunk_outcome
from audiosep_kit.features._progress import ExtractionBar

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise BackendUnavailableError(
            "--engine ray needs Ray Data, which is not installed: pip install 'audiosep-kit[ray]' "
            "(or use the local engine, the default)."
        ) from None
    return ray


@dataclass(frozen=True)
class RayEngine:
    """Where and how a store's chunks run on Ray.

    ``address``: an existing cluster (``ray://...``, ``host:port`` or ``auto``); None starts a local
    one of ``num_cpus`` (default: this machine's) for the run and stops it after. ``actors``: model
    actors (default: one per GPU with ``device`` cuda, else one per node); ``cpus_per_actor`` (default:
    the smallest node's CPUs, minus one for decoding tasks when they run apart) is also each actor's
    number of intra-op threads. ``decode_tasks``: decode in Ray tasks apart from the actors (default:
    only with GPU actors; on CPU it can pay for a fast backend on nodes with cores to spare).
    """

    address: str | None = None
    num_cpus: int | None = None
    actors: int | None = None
    cpus_per_actor: int | None = None
    decode_tasks: bool | None = None

    def __post_init__(self) -> None:
        for name in ("num_cpus", "actors", "cpus_per_actor"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"RayEngine `{name}` must be a positive integer or None; got {value!r}.")

    def run(
        self,
        extractor,
        sources: Sequence[AudioSegment],
        rows: list[int],
        chunk_size: int,
        max_seconds: float,
        bar: ExtractionBar,
    ) -> tuple[Iterator[tuple[dict, dict]], dict]:
        """(records, vectors) per chunk as the cluster finishes them, and the engine's description
        for the manifest (engine, address, cluster shape, actors)."""
        if extractor.recipe is None:
            raise ConfigError(
                "the Ray engine builds the extractor again on every actor from its recipe, and this one has "
                "none; build it with FeatureExtractor.from_checkpoint (as the CLI does)."
            )
        ray = _ray()
        started = _connect(ray, self.address, self.num_cpus)
        try:
            shape = _cluster_shape(ray)
            plan = self._plan(shape, extractor.backend.device)
        except BaseException:
            _disconnect(ray, started)
            raise
        chunks = [rows[start : start + chunk_size] for start in range(0, len(rows), chunk_size)]
        description = {"name": "ray", "address": self.address or "local", "cluster": shape, **plan}
        results = _stream(ray, extractor, sources, chunks, max_seconds, plan, bar, started)
        return results, description

    def _plan(self, shape: dict, device: str) -> dict:
        gpu = str(device).startswith("cuda")
        if gpu and not shape["gpus"]:
            raise ConfigError(f"--device {device} with --engine ray, but the cluster has no GPUs ({shape}).")
        apart = gpu if self.decode_tasks is None else self.decode_tasks
        smallest = min(shape["cpus_per_node"]) if shape["cpus_per_node"] else 1
        actors = self.actors or (int(shape["gpus"]) if gpu else shape["nodes"])
        cpus = self.cpus_per_actor or max(1, smallest - 1 if apart else smallest)
        if apart and cpus >= smallest:
            raise ConfigError(
                f"decoding tasks apart from actors of {cpus} CPUs on nodes of {smallest}: no CPU would be left to "
                "decode (the run would wait forever). Give the actors fewer CPUs (cpus_per_actor)."
            )
        return {
            "actors": actors,
            "cpus_per_actor": cpus,
            "gpus_per_actor": 1 if gpu else 0,
            "decoding": "Ray tasks of 1 CPU, apart from the actors" if apart else "inside each actor",
        }


def _connect(ray, address: str | None, num_cpus: int | None) -> bool:
    """Join ``address`` or start a local cluster; True when this run started it (and stops it)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        ray.init(num_cpus=num_cpus, **options)
    else:
        if num_cpus is not None:
            raise ConfigError("num_cpus sizes a local Ray cluster; an existing cluster at --address has its own.")
        ray.init(address=address, **options)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's own bar says files, audio s/s and ETA
    context.print_on_execution_start = False
    return True


def _disconnect(ray, started: bool) -> None:
    if started:
        ray.shutdown()


def _cluster_shape(ray) -> dict:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = [int(n["Resources"].get("CPU", 0)) for n in nodes]
    return {
        "nodes": len(nodes),
        "cpus": int(sum(cpus)),
        "gpus": int(sum(n["Resources"].get("GPU", 0) for n in nodes)),
        "cpus_per_node": cpus,
    }


def _stream(ray, extractor, sources, chunks, max_seconds, plan, bar, started) -> Iterator[tuple[dict, dict]]:
    """The Ray Data pipeline over ``chunks``; yields each finished chunk's (records, vectors)."""
    try:
        if not chunks:
            return
        identity = extractor_identity(extractor.describe())
        items = [{"chunk": k, "rows": json.dumps(chunk), "sources": _segments_json(sources, chunk)} for k, chunk in
                 enumerate(chunks)]  # fmt: skip
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        embed_kwargs = {"recipe": extractor.recipe, "identity": identity, "threads": plan["cpus_per_actor"]}
        if plan["decoding"].startswith("Ray tasks"):
            decoding = {"max_seconds": max_seconds, "config": extractor.config}
            ds = ds.map_batches(_decode_batch, batch_size=1, num_cpus=1, fn_kwargs=decoding)
        else:
            embed_kwargs["max_seconds"] = max_seconds
        ds = ds.map_batches(
            _ChunkEmbedder,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=plan["actors"]),
            num_cpus=plan["cpus_per_actor"],
            num_gpus=plan["gpus_per_actor"],
            fn_constructor_kwargs=embed_kwargs,
        )
        for item in ds.iter_rows():
            records = {int(row): record for row, record in json.loads(item["records"])}
            ok_rows = json.loads(item["ok_rows"])
            matrix = np.frombuffer(item["vectors"], dtype="<f4").reshape(len(ok_rows), -1) if ok_rows else ()
            vectors: dict[int, np.ndarray] = dict(zip(ok_rows, matrix, strict=True))
            bar.advance(len(records), sum(r.get("duration_s", 0.0) or 0.0 for r in records.values()))
            yield records, vectors
    except ray.exceptions.RayError as exc:
        raise _our_error(exc) from exc
    finally:
        _disconnect(ray, started)


#: The last line of a Ray error that carries one of our errors (raised on an actor or in a task).
_OUR_ERROR = re.compile(r"audiosep_kit\.errors\.(\w+): (.*)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _our_error(exc: BaseException) -> AudioSepKitError:
    """The error to show for a Ray failure: ours as raised on the cluster (a ConfigError stays one),
    else a StoreError with Ray's last line; either way, what was committed is kept."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    resume = " Every chunk committed so far is kept: rerun the same command to resume."
    for line in reversed(lines):
        match = _OUR_ERROR.fullmatch(line)
        if match and isinstance(getattr(errors, match.group(1), None), type):
            return getattr(errors, match.group(1))(f"{match.group(2).rstrip('.')} (raised on the Ray cluster).{resume}")
    last = lines[-1] if lines else ""
    return StoreError(f"the Ray engine stopped ({type(exc).__name__}: {last}).{resume}")


def _segments_json(sources: Sequence[AudioSegment], rows: list[int]) -> str:
    """A chunk's inputs, carried by its pipeline item (so no worker holds the whole file list)."""
    return json.dumps([[str(sources[row].path), sources[row].start_s, sources[row].end_s] for row in rows])


def _chunk(batch: dict) -> tuple[list[int], dict[int, AudioSegment]]:
    """The rows of the one chunk in ``batch`` and their inputs."""
    rows = json.loads(batch["rows"][0])
    segments = [AudioSegment(Path(path), start, end) for path, start, end in json.loads(batch["sources"][0])]
    return rows, dict(zip(rows, segments, strict=True))


def _decoded(rows: list[int], sources: dict[int, AudioSegment], max_seconds: float, config) -> list:
    """A chunk's rows decoded as the local engine decodes them (features._decoding.decode_row)."""
    hashes: dict = {}
    return [decode_row(sources[row], max_seconds, config, hashes) for row in rows]


def _decode_batch(batch: dict, max_seconds: float, config) -> dict:
    """Ray task: one chunk decoded (clips, or their errors) for an actor elsewhere; the decoded clips
    travel to it through Ray's object store."""
    rows, sources = _chunk(batch)
    decoded = np.array([_decoded(rows, sources, max_seconds, config)], dtype=object)
    return {"chunk": batch["chunk"], "rows": batch["rows"], "sources": batch["sources"], "decoded": decoded}


class _ChunkEmbedder:
    """Ray actor: one FeatureExtractor, built from the driver's recipe and checked to be the same one
    (weights checksum, backend, precision, encoder options), embedding one chunk per call."""

    def __init__(self, recipe, identity: dict, threads: int, max_seconds: float | None = None):
        import torch

        torch.set_num_threads(threads)
        self.extractor = recipe()
        mine = extractor_identity(self.extractor.describe())
        if mine != identity:
            diff = {k: (identity.get(k), mine.get(k)) for k in identity if identity.get(k) != mine.get(k)}
            raise ConfigError(
                f"a Ray actor built a different extractor than the driver's (driver vs actor: {diff}); the "
                "checkpoint and artifacts must be the same files on every node."
            )
        self.max_seconds = max_seconds  # given: this actor decodes its chunks
        self._bar = ExtractionBar(0, enabled=False)

    def __call__(self, batch: dict) -> dict:
        rows, sources = _chunk(batch)
        if self.max_seconds is None:
            decoded = list(batch["decoded"][0])
        else:
            decoded = _decoded(rows, sources, self.max_seconds, self.extractor.config)
        records, vectors = chunk_outcome(self.extractor, sources, rows, decoded, self._bar)
        ok_rows = [row for row in rows if row in vectors]
        matrix = np.stack([vectors[row] for row in ok_rows]) if ok_rows else np.empty((0, 0), np.float32)
        return {  # plain JSON and bytes: nothing for Ray's table formats to convert
            "chunk": batch["chunk"],
            "records": [json.dumps([[row, records[row]] for row in rows])],
            "ok_rows": [json.dumps(ok_rows)],
            "vectors": [np.ascontiguousarray(matrix, dtype="<f4").tobytes()],
        }
