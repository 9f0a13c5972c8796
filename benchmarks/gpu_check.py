"""The one prepared GPU run (issue 13): CUDA conformance tests, then audiosep-bench over the CUDA variants.

Run by ``benchmarks/gpu_check.sh`` after ``make venv ACCEL=cuda``; ``--dry-run`` checks on any machine
what can be checked without a GPU (imports, every variant's options and provider lists, the bench's
acceptance of the --backends list, the plan) and runs in ``make test``. Writes under ``--out``
(``$OUT`` in the shell script): ``pytest_cuda.txt``, ``bench.json`` (audiosep-bench's rows) and
``bench.md`` (the table: audio s/s = x real time, p50/p99, build and first-call time, cosine vs
CPU eager fp32, GPU memory). The bench is audiosep-bench itself, driven through its command line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

#: Clip lengths (s) x batch sizes of the plan; the TensorRT profiles are one per length.
DURATIONS = (1.0, 5.0, 10.0)
BATCHES = (1, 32, 128)
_TRT = f"trt_buckets_s={'/'.join(f'{d:g}' for d in DURATIONS)}+trt_max_batch={max(BATCHES)}"
#: The CUDA variants, configured as users configure them (eager fp32 on CUDA, the speed reference, always runs).
VARIANTS = (
    "eager:bf16",
    "eager:fp16",
    "compile:fp32+mode=max-autotune",
    "compile:bf16+mode=max-autotune",
    "onnx:fp32+conv_algo_search=EXHAUSTIVE",
    "onnx:fp32+conv_algo_search=HEURISTIC",
    "onnx:fp32+conv_algo_search=HEURISTIC+prefer_nhwc=true",
    "onnx:fp32+conv_algo_search=HEURISTIC+io_binding=false",
    "onnx:fp16+conv_algo_search=HEURISTIC",
    f"onnx:fp16+tensorrt=true+{_TRT}",
)
#: (header, format, row key or function) of the Markdown table.
COLUMNS = (
    ("backend", "", "label"),
    ("batch", "d", "batch"),
    ("dur s", ".0f", "duration_s"),
    ("audio s/s (x real time)", ".1f", "audio_seconds_per_second"),
    ("p50 ms", ".1f", lambda r: 1e3 * r["p50_s"]),
    ("p99 ms", ".1f", lambda r: 1e3 * r["p99_s"]),
    ("x eager cuda", ".2f", "speedup_vs_eager"),
    ("build s", ".1f", lambda r: (r["export_s"] or 0.0) + r["build_s"]),
    ("1st call s", ".1f", "first_call_s"),
    ("cos vs cpu fp32", ".6f", "cosine_vs_fp32"),
    ("torch GPU MB", ".0f", "gpu_torch_peak_mb"),
    ("GPU used MB", ".0f", "gpu_device_used_mb"),
)


def bench_command(out: Path, duration: float, *, repeats: int = 3) -> list[str]:
    """The audiosep-bench command line for one clip length (cosines against eager fp32 on the CPU).

    One run per length, each writing its own JSON, so a run cut short by the time budget keeps the
    lengths already measured; exports, Inductor and TensorRT caches carry over between the runs."""
    return [
        sys.executable,
        "-m",
        "audiosep_kit.cli.bench",
        "--device",
        "cuda",
        "--reference-device",
        "cpu",
        "--backends",
        ",".join(VARIANTS),
        "--batch-sizes",
        ",".join(str(b) for b in BATCHES),
        "--durations",
        f"{duration:g}",
        "--repeats",
        str(repeats),
        "--no-peak",
        "--json",
        str(out / f"bench_{duration:g}s.json"),
    ]


def pytest_command() -> list[str]:
    """The CUDA-marked conformance tests (they skip, with the reason, where a part is missing)."""
    return [sys.executable, "-m", "pytest", "-q", "-m", "cuda and not slow", "-p", "no:cacheprovider", "tests"]


def markdown(rows: list[dict]) -> str:
    """The bench rows (kind 'latency') as a GitHub table, in the plan's order."""
    from audiosep_kit._tables import format_table

    latency = [r for r in rows if r.get("kind") == "latency"]
    cells = [[key(r) if callable(key) else r.get(key) for _, _, key in COLUMNS] for r in latency]
    return format_table(cells, [h for h, _, _ in COLUMNS], formats=[f for _, f, _ in COLUMNS], markdown=True)


def check_plan() -> list[str]:
    """What a CPU machine can check: every variant parses, its options are taken, its ORT providers build,
    and audiosep-bench's --backends accepts the list. Returns one line per variant."""
    from audiosep_kit.bench import BackendSpec
    from audiosep_kit.cli._options import BackendList
    from audiosep_kit.runtime.backends._ort_providers import providers_for

    BackendList(configured=True).convert(",".join(VARIANTS), None, None)
    lines = []
    for text in VARIANTS:
        spec = BackendSpec.parse(text)
        options = spec.options()
        if spec.name == "onnx":
            ort_keys = ("tensorrt", "conv_algo_search", "prefer_nhwc", "trt_buckets_s", "trt_max_batch")
            wanted = {k: v for k, v in options.items() if k in ort_keys}
            providers = providers_for("cuda", precision=spec.precision, **wanted)
            lines.append(f"{spec.label}: providers {[name for name, _ in providers]}")
        else:
            lines.append(f"{spec.label}: options {options}")
    return lines


def _run(command: list[str], log: Path, timeout_s: float) -> int:
    """Run ``command``, its output to the terminal and to ``log``; the exit status (124 on timeout)."""
    print("$", " ".join(command), flush=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        log.write_text(f"timed out after {timeout_s:.0f} s\n{exc.stdout or ''}{exc.stderr or ''}")
        print(f"timed out after {timeout_s:.0f} s", flush=True)
        return 124
    log.write_text(done.stdout + done.stderr)
    print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", flush=True)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check_out"), help="Folder for the logs and tables.")
    parser.add_argument("--dry-run", action="store_true", help="Check imports, options and the plan; run nothing.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved timed rounds of the bench.")
    parser.add_argument(
        "--budget-s", type=float, default=300.0, help="Seconds for tests + benches (the install is apart)."
    )
    args = parser.parse_args(argv)
    import onnxruntime
    import torch

    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), cuda available: {torch.cuda.is_available()}")
    print(f"onnxruntime {onnxruntime.__version__}: {onnxruntime.get_available_providers()}")
    for line in check_plan():
        print("plan:", line)
    print("plan:", " ".join(pytest_command()))
    for duration in DURATIONS:
        print("plan:", " ".join(bench_command(args.out, duration, repeats=args.repeats)))
    if args.dry_run:
        print("dry run: plan checked, nothing run")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device (torch.cuda.is_available() is False): run `make venv ACCEL=cuda` on a GPU machine")
        return 2
    return _run_plan(args.out, args.repeats, args.budget_s, torch.cuda.get_device_name())


def _run_plan(out: Path, repeats: int, budget_s: float, gpu: str) -> int:
    """Tests, then one bench per length within ``budget_s``; the tables of whatever finished."""
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.perf_counter() + budget_s
    status = {"tests": _run(pytest_command(), out / "pytest_cuda.txt", timeout_s=min(120.0, budget_s / 4))}
    for duration in DURATIONS:
        left = deadline - time.perf_counter()
        if left < 20:
            status[f"bench {duration:g} s"] = "not run: time budget spent"
            continue
        log = out / f"bench_{duration:g}s.txt"
        status[f"bench {duration:g} s"] = _run(bench_command(out, duration, repeats=repeats), log, timeout_s=left)
    rows = [row for path in sorted(out.glob("bench_*s.json")) for row in json.loads(path.read_text())]
    table = markdown(sorted(rows, key=lambda r: (r.get("duration_s", 0), r.get("label", ""), r.get("batch", 0))))
    (out / "bench.json").write_text(json.dumps(rows, indent=2))
    (out / "bench.md").write_text(f"GPU: {gpu}\n\n{table}\n\nstatus: {status}\n")
    print(table, f"gpu_check: {status}", sep="\n")
    return 0 if all(value == 0 for value in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
