"""Figures (median, min, max of several runs), targets with a "met / missed by X%" verdict, and the writers
of bench/results.md (a table a person reads) and bench/results.json (for tracking across runs)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_MARKDOWN = Path(__file__).resolve().parent / "results.md"
RESULTS_JSON = Path(__file__).resolve().parent / "results.json"
# Unit of ratios ("Spark ÷ DuckDB"), shown with a multiplication sign.
RATIO = "ratio"
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Figure:
    """One measured quantity over several runs."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("a figure needs at least one sample")

    @classmethod
    def of(cls, samples: Iterable[float]) -> Figure:
        return cls(tuple(float(sample) for sample in samples))

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    @property
    def runs(self) -> int:
        return len(self.samples)


def ratio_figure(numerators: Sequence[float], denominators: Sequence[float]) -> Figure:
    """Per-run ratios of paired runs (run i of one over run i of the other), so both saw the same load."""
    if len(numerators) != len(denominators):
        raise ValueError(f"paired runs needed, got {len(numerators)} and {len(denominators)}")
    return Figure.of(top / bottom for top, bottom in zip(numerators, denominators, strict=True))


@dataclass(frozen=True)
class Measurement:
    section: str
    case: str
    metric: str
    unit: str
    figure: Figure
    note: str = ""


@dataclass(frozen=True)
class Target:
    """A goal such as "Spark ÷ DuckDB at most 6" checked against a measured (median) value."""

    name: str
    limit: float
    measured: float
    unit: str
    higher_is_better: bool = False
    note: str = ""

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.higher_is_better else self.measured <= self.limit

    @property
    def missed_by_percent(self) -> float:
        """How far past the limit, as a share of the limit (0 when met)."""
        if self.met or self.limit == 0:
            return 0.0
        if self.higher_is_better:
            return (self.limit - self.measured) / self.limit * 100
        return (self.measured - self.limit) / self.limit * 100

    def verdict(self) -> str:
        comparison = "≥" if self.higher_is_better else "≤"
        wording = (
            f"target {comparison} {format_value(self.limit, self.unit)}, "
            f"measured {format_value(self.measured, self.unit)}"
        )
        if self.met:
            return f"{wording} — met"
        return f"{wording} — missed by {self.missed_by_percent:.0f}%"


@dataclass(frozen=True)
class Table:
    """A small table of its own (for example detection quality beside published figures), in its section."""

    section: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()


@dataclass
class BenchReport:
    started_at: str
    environment: dict[str, str]
    measurements: list[Measurement] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    wall_seconds: float = 0.0

    def add(self, section: str, case: str, metric: str, unit: str, samples: Iterable[float], note: str = "") -> Figure:
        figure = Figure.of(samples)
        self.measurements.append(Measurement(section, case, metric, unit, figure, note))
        return figure

    def add_figure(self, section: str, case: str, metric: str, unit: str, figure: Figure, note: str = "") -> None:
        self.measurements.append(Measurement(section, case, metric, unit, figure, note))


def format_value(value: float, unit: str) -> str:
    if unit == RATIO:
        return f"{value:.1f}{TIMES}"
    if unit == "s":
        return f"{value:.0f} s" if value >= 100 else f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if unit in ("rows/s", "records/s"):
        return f"{value:,.0f} {unit}"
    if unit == "shards":
        return f"{value:,.1f} shards"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.3g} {unit}".rstrip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: BenchReport) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Run started {report.started_at}; the whole `python -m bench` took {format_value(report.wall_seconds, 's')}.",
        "",
        "Each figure is the **median** of several runs, with the fastest and slowest run beside it. Single runs "
        "are noisy (check the load averages below): compare medians, and read a wide min-to-max spread as noise "
        "rather than a regression.",
        "",
        "| Environment | |",
        "|---|---|",
        *[f"| {_cell(key)} | {_cell(value)} |" for key, value in report.environment.items()],
        "",
    ]
    if report.targets:
        lines += ["## Targets", "", "| Target | Verdict | Note |", "|---|---|---|"]
        for target in report.targets:
            mark = "✅" if target.met else "❌"
            lines.append(f"| {_cell(target.name)} | {mark} {_cell(target.verdict())} | {_cell(target.note)} |")
        lines.append("")
    sections: list[str] = []
    for section_name in [t.section for t in report.tables] + [m.section for m in report.measurements]:
        if section_name not in sections:
            sections.append(section_name)
    for section in sections:
        lines += [f"## {section}", ""]
        for table in (t for t in report.tables if t.section == section):
            lines += [f"**{_cell(table.title)}**", "", "| " + " | ".join(_cell(h) for h in table.header) + " |"]
            lines.append("|" + "---|" * len(table.header))
            lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
            lines += ["", *[f"- {_cell(note)}" for note in table.notes], ""] if table.notes else [""]
        section_measurements = [m for m in report.measurements if m.section == section]
        if not section_measurements:
            continue
        lines += ["| Case | Metric | Median | Min | Max | Runs | Note |"]
        lines.append("|---|---|---:|---:|---:|---:|---|")
        for item in section_measurements:
            figure = item.figure
            lines.append(
                f"| {_cell(item.case)} | {_cell(item.metric)} | {format_value(figure.median, item.unit)} "
                f"| {format_value(figure.minimum, item.unit)} | {format_value(figure.maximum, item.unit)} "
                f"| {figure.runs} | {_cell(item.note)} |"
            )
        lines.append("")
    if report.skipped:
        lines += ["## Skipped", "", "| What | Why |", "|---|---|"]
        lines += [f"| {_cell(what)} | {_cell(why)} |" for what, why in report.skipped]
        lines.append("")
    if report.notes:
        lines += ["## Notes", ""]
        lines += [f"- {note}" for note in report.notes]
        lines.append("")
    return "\n".join(lines)


def report_as_json(report: BenchReport) -> dict[str, Any]:
    return {
        "started_at": report.started_at,
        "wall_seconds": round(report.wall_seconds, 3),
        "environment": report.environment,
        "measurements": [
            {
                "section": m.section,
                "case": m.case,
                "metric": m.metric,
                "unit": m.unit,
                "median": m.figure.median,
                "min": m.figure.minimum,
                "max": m.figure.maximum,
                "runs": m.figure.runs,
                "samples": list(m.figure.samples),
                "note": m.note,
            }
            for m in report.measurements
        ],
        "targets": [
            {
                "name": t.name,
                "limit": t.limit,
                "comparison": ">=" if t.higher_is_better else "<=",
                "measured": t.measured,
                "unit": t.unit,
                "met": t.met,
                "missed_by_percent": round(t.missed_by_percent, 1),
                "verdict": t.verdict(),
                "note": t.note,
            }
            for t in report.targets
        ],
        "skipped": [{"what": what, "why": why} for what, why in report.skipped],
        "notes": report.notes,
        "tables": [
            {
                "section": t.section,
                "title": t.title,
                "header": list(t.header),
                "rows": [list(r) for r in t.rows],
                "notes": list(t.notes),
            }
            for t in report.tables
        ],
    }


def write_results(report: BenchReport, markdown_path: Path = RESULTS_MARKDOWN, json_path: Path = RESULTS_JSON) -> None:
    markdown_path.write_text(render_markdown(report), encoding="utf-8")
    json_path.write_text(json.dumps(report_as_json(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
