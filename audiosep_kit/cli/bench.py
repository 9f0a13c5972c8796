"""audiosep-bench: side-by-side backend throughput (built in the benchmarks issue)."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.command()
def main() -> None:
    """Not built yet: the benchmark layer lands with the benchmarks issue."""
    raise click.ClickException("audiosep-bench is not built yet (benchmarks issue); use `make bench` meanwhile.")
