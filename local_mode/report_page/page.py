"""The report page's HTML: one self-contained document (inline CSS and SVG, no script, no external URL).

The Content-Security-Policy meta tag lets the page load nothing at all but its own inline styles (and a
``data:`` icon, so the browser does not ask for /favicon.ico): a stray URL in it would be blocked, not fetched.
All text from the data (dimension values and measure names come from the user's events) goes through
:func:`html.escape`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape

from local_mode.report_page.data import GroupSummary, PipelineEvent, ReportData
from local_mode.report_page.svg import Line, Span, format_number, time_chart

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MAX_CONTRIBUTORS_SHOWN = 5
# What made the group's most severe series anomalous, as the alert's "Unusual" line says it.
EVIDENCE_NOTES = {"point": "the value itself", "shift": "a lasting shift", "volatility": "how it moves"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2b36; max-width: 1100px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; } h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
.meta, .note { color: #5c6b77; font-size: .9rem; }
.problems { background: #fff3cd; border: 1px solid #e0c36c; padding: .5rem 1rem; }
svg.chart { display: block; max-width: 100%; height: auto; background: #fbfcfd; border: 1px solid #dde3e8; }
svg .grid line { stroke: #e3e8ec; stroke-width: 1; } svg text { font-size: 11px; fill: #5c6b77; }
svg text.empty { font-size: 16px; text-anchor: middle; }
polyline { fill: none; stroke-width: 1.4; } circle { stroke: none; }
polyline.total { stroke: #264653; } circle.total { fill: #264653; }
polyline.expected { stroke: #8d99ae; stroke-dasharray: 4 3; } circle.expected { fill: #8d99ae; }
rect.span { opacity: .28; } rect.high { fill: #d62828; } rect.low { fill: #f4a261; } rect.event { fill: #d62828; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; margin-top: .5rem; }
th, td { border-bottom: 1px solid #dde3e8; padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: #eef2f5; } td.number { text-align: right; white-space: nowrap; }
.legend span { display: inline-block; width: .9rem; height: .9rem; vertical-align: middle; margin: 0 .2rem 0 .8rem; }
.legend .high { background: #d62828; opacity: .5; } .legend .low { background: #f4a261; opacity: .6; }
ul.shares { margin: .2rem 0 0; padding-left: 1.1rem; }
"""


def _time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}"


def _span_text(start: datetime, end: datetime) -> str:
    same_day = start.date() == end.date() or (end - start < timedelta(days=1) and end.time() == datetime.min.time())
    return (
        f"{_time(start)}\N{EN DASH}{end.astimezone(UTC):%H:%M}"
        if same_day
        else f"{_time(start)}\N{EN DASH}{_time(end)}"
    )


def _group_title(group: GroupSummary) -> str:
    return (
        f"{group.measure} {group.direction}, severity {group.severity:.0f}, "
        f"{_span_text(group.opened_at, group.last_interval_end)} UTC: {group.root_cause()} ({group.group_id})"
    )


def _measure_sections(data: ReportData) -> list[str]:
    parts = ['<h2 id="streaming">Streaming metrics</h2>']
    if not any(series.totals for series in data.measures):
        parts.append(
            '<p class="note" id="no-intervals">No interval files under <code>streaming/…/intervals/</code>: '
            "the streaming system did not run, or wrote nothing yet.</p>"
        )
    parts.append(
        '<p class="legend note">Each measure\'s total over every dimension combination, per '
        f"{data.frequency_minutes}-minute interval. Anomaly groups are shaded:"
        '<span class="high"></span>high<span class="low"></span>low (hover for the group).</p>'
    )
    gap = timedelta(minutes=data.frequency_minutes)
    for index, series in enumerate(data.measures):
        name, aggregation = series.measure.name, series.measure.aggregation
        spans = [
            Span(start, end, group.direction if group.direction in ("high", "low") else "high", _group_title(group))
            for group in data.groups
            if group.measure == name
            for start, end in group.intervals
        ]
        points = [(start + gap / 2, value) for start, value in series.totals.items()]
        groups = sum(1 for group in data.groups if group.measure == name)
        heading = f"{name} ({aggregation}) — {groups} anomaly group{'s' if groups != 1 else ''}"
        parts.append(f'<section class="measure" data-measure="{escape(name)}">')
        parts.append(f"<h3>{escape(heading)}</h3>")
        if series.missing_column:
            parts.append(f'<p class="note">No interval file has a column named {escape(repr(name))}.</p>')
        parts.append(
            time_chart(
                [Line(points, "total", f"{name} total", max_gap=gap * 1.5)],
                spans,
                title=f"{name} ({aggregation}) per {data.frequency_minutes}-minute interval, all combinations",
                y_label=f"{name} per {data.frequency_minutes} min",
                chart_id=f"measure-chart-{index}",
            )
        )
        parts.append("</section>")
    return parts


def _shares(group: GroupSummary) -> str:
    items = [
        f"<li>{escape(contributor.label())}: {100 * contributor.share:.0f}%</li>"
        for contributor in group.contributors[:MAX_CONTRIBUTORS_SHOWN]
    ]
    more = len(group.contributors) - MAX_CONTRIBUTORS_SHOWN
    if more > 0:
        items.append(f"<li>… and {more} more</li>")
    return f'<ul class="shares">{"".join(items)}</ul>' if items else ""


def _group_rows(data: ReportData) -> list[str]:
    header = (
        "<tr><th>When (UTC)</th><th>Measure</th><th>Direction</th><th>Severity</th><th>Observed vs expected</th>"
        "<th>Root cause (share of the deviation)</th><th>Status</th><th>Alerted</th><th>Feedback</th></tr>"
    )
    rows = [f'<table id="groups"><thead>{header}</thead><tbody>']
    if not data.groups:
        rows.append('<tr class="no-groups"><td colspan="9">No anomaly groups in this run.</td></tr>')
    for group in data.groups:
        intervals = len(group.intervals)
        change = f" ({100 * (group.observed / group.expected - 1):+.0f}%)" if group.expected else ""
        feedback = {"not_anomaly": "not an anomaly", "anomaly": "anomaly"}.get(group.feedback or "", "—")
        cells = (
            f"{escape(_span_text(group.opened_at, group.last_interval_end))}<br>"
            f'<span class="note">{intervals} interval{"s" if intervals != 1 else ""}; {escape(group.group_id)}</span>',
            escape(group.measure),
            escape(group.direction),
            f"{group.severity:.1f}"
            + (f'<br><span class="note">{EVIDENCE_NOTES[group.evidence]}</span>' if group.evidence else ""),
            f"{escape(format_number(group.observed))} vs {escape(format_number(group.expected))}{change}",
            f"{escape(group.root_cause())}{_shares(group)}"
            + (f'<br><span class="note">highest level: {escape(group.level)}</span>' if group.level else ""),
            escape(group.status),
            "yes" if group.alerted else "no",
            escape(feedback),
        )
        classes = ("", "", "", "number", "number", "", "", "", "")
        tds = "".join(
            f'<td class="{css}">{cell}</td>' if css else f"<td>{cell}</td>"
            for css, cell in zip(classes, cells, strict=True)
        )
        rows.append(f'<tr class="group" data-group-id="{escape(group.group_id)}">{tds}</tr>')
    rows.append("</tbody></table>")
    return rows


def _event_rows(events: list[PipelineEvent]) -> list[str]:
    header = (
        "<tr><th>Event</th><th>When (UTC)</th><th>Windows</th><th>Peak score</th><th>Passengers observed vs "
        "expected</th></tr>"
    )
    rows = [f'<table id="pipeline-events"><thead>{header}</thead><tbody>']
    for event in events:
        change = f" ({escape(event.change_percent)}%)" if event.change_percent else ""
        rows.append(
            f'<tr class="event"><td>#{escape(event.event_id)}</td><td>{escape(_span_text(event.start, event.end))}</td>'
            f'<td class="number">{escape(event.windows)}</td><td class="number">{escape(event.peak_score)}</td>'
            f'<td class="number">{escape(event.observed)} vs {escape(event.expected)}{change}</td></tr>'
        )
    rows.append("</tbody></table>")
    return rows


def _pipeline_section(data: ReportData) -> list[str]:
    if not data.pipeline_windows and not data.pipeline_events:
        return []
    parts = ['<h2 id="pipeline">ML pipeline</h2>']
    lines = [Line([(window.start, window.passengers) for window in data.pipeline_windows], "total", "passengers")]
    expected = [(window.start, window.expected) for window in data.pipeline_windows if window.expected is not None]
    if expected:
        lines.append(Line(expected, "expected", "expected"))
    spans = [
        Span(
            event.start, event.end, "event", f"event #{event.event_id}: {event.observed} vs {event.expected} passengers"
        )
        for event in data.pipeline_events
    ]
    parts.append(
        '<p class="legend note">Taxi passengers per half hour (solid), what the weekly pattern expected (dashed), '
        "and the anomaly events of the pipeline's Random Cut Forest scores:"
        '<span class="high"></span>event</p>'
    )
    parts.append(
        time_chart(lines, spans, title="Taxi passengers per half hour", y_label="passengers", chart_id="pipeline-chart")
    )
    if data.pipeline_events:
        parts += _event_rows(data.pipeline_events)
    else:
        parts.append('<p class="note">No anomaly events: no window scored at or above the cut-off.</p>')
    return parts


def render_page(data: ReportData, *, source: str, generated_at: datetime) -> str:
    body = [
        "<h1>Local run report</h1>",
        f'<p class="meta">Built from <code>{escape(source)}</code> at {escape(_time(generated_at))} UTC. '
        f"Dimensions: {escape(', '.join(data.dimensions) or '(none)')}.</p>",
    ]
    if data.problems:
        body.append('<div class="problems" id="problems"><p>Some inputs could not be read:</p><ul>')
        body += [f"<li>{escape(problem)}</li>" for problem in data.problems]
        body.append("</ul></div>")
    body += _measure_sections(data)
    body.append('<h2 id="anomaly-groups">Anomaly groups</h2>')
    body.append(
        '<p class="note">One row per group (all its intervals together, newest first). Observed and expected add up '
        "over the group's intervals and leaf combinations; shares are each combination's part of the deviation.</p>"
    )
    body += _group_rows(data)
    body += _pipeline_section(data)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CONTENT_SECURITY_POLICY)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>Local run report</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
