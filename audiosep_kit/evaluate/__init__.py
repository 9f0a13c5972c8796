"""The evaluate layer: heads on frozen features, official protocols, metrics and reports.

``evaluate_extracted`` reads a task, extracts its features through the runtime into the feature
cache and evaluates them; ``evaluate_precomputed`` evaluates a saved ``{'features', 'labels'}`` file;
both end in ``evaluate_features``; ``evaluate_sweep`` evaluates a grid of (FiLM, layer, pooling) points
from one encoder pass per FiLM mode. Model selection never sees the test rows.
"""

from audiosep_kit.evaluate._demo_data import DEMO_WORDS, demo_task, make_demo_dataset
from audiosep_kit.evaluate._heads import HEADS, HeadSpec, LinearHead, LogRegHead, MLP3Head, get_head_spec, make_head
from audiosep_kit.evaluate._metrics import SCORES, compute_scores, score_names
from audiosep_kit.evaluate._precomputed import PrecomputedFeatures, align_to_examples, load_precomputed
from audiosep_kit.evaluate._protocols import PROTOCOLS, EvalOptions, Protocol, RunResult, evaluate
from audiosep_kit.evaluate._report import REPORT_FORMAT_VERSION, build_report, format_table, read_results, write_run_dir
from audiosep_kit.evaluate._runner import (
    PROTOCOL_CHOICES,
    Evaluation,
    ExtractionConfig,
    RunConfig,
    evaluate_extracted,
    evaluate_features,
    evaluate_precomputed,
)
from audiosep_kit.evaluate._suite import SUITE_FAMILIES, Suite, SuiteEntry, evaluate_suite, resolve_task_list
from audiosep_kit.evaluate._sweep import AXES as SWEEP_AXES
from audiosep_kit.evaluate._sweep import SweepAxes, SweepEvaluation, SweepPoint, evaluate_sweep
from audiosep_kit.evaluate._sweep_report import SWEEP_FORMAT_VERSION, format_sweep, plot_sweep

__all__ = [
    "DEMO_WORDS",
    "EvalOptions",
    "Evaluation",
    "ExtractionConfig",
    "HEADS",
    "HeadSpec",
    "LinearHead",
    "LogRegHead",
    "MLP3Head",
    "PROTOCOLS",
    "PROTOCOL_CHOICES",
    "PrecomputedFeatures",
    "Protocol",
    "REPORT_FORMAT_VERSION",
    "RunConfig",
    "RunResult",
    "SCORES",
    "SUITE_FAMILIES",
    "Suite",
    "SuiteEntry",
    "SWEEP_AXES",
    "SWEEP_FORMAT_VERSION",
    "SweepAxes",
    "SweepEvaluation",
    "SweepPoint",
    "align_to_examples",
    "build_report",
    "compute_scores",
    "demo_task",
    "evaluate",
    "evaluate_extracted",
    "evaluate_features",
    "evaluate_precomputed",
    "evaluate_suite",
    "evaluate_sweep",
    "format_sweep",
    "format_table",
    "get_head_spec",
    "load_precomputed",
    "make_demo_dataset",
    "make_head",
    "plot_sweep",
    "read_results",
    "resolve_task_list",
    "score_names",
    "write_run_dir",
]
