"""The one table printer: rows of cells in, an aligned plain-text or Markdown table out (tabulate).

The CLI tables (bench rows, parity verdicts, evaluation summaries) and the Markdown of ``summary.md``
all go through :func:`format_table`, so a number is formatted where it is chosen and laid out here.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate


def _text(value: object, spec: str) -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def format_table(
    rows: Sequence[Sequence[object]],
    headers: Sequence[str],
    *,
    formats: Sequence[str] | None = None,
    markdown: bool = False,
) -> str:
    """Lay out ``rows`` under ``headers``; ``formats[i]`` is a format spec for column i ('' = str()).

    Text columns (spec '') are left-aligned, formatted numbers right-aligned; None prints as '-'. Plain
    text is a header line, a rule and one line per row; ``markdown=True`` gives a GitHub-style pipe table.
    """
    specs = list(formats) if formats is not None else [""] * len(headers)
    cells = [[_text(value, spec) for value, spec in zip(row, specs, strict=True)] for row in rows]
    align = ["left" if not spec else "right" for spec in specs]
    return tabulate(
        cells,
        headers=list(headers),
        tablefmt="github" if markdown else "simple",
        disable_numparse=True,
        colalign=align,
    )
