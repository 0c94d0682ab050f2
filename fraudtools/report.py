"""The demo's self-contained HTML report: inline SVG pictures, no scripts, no external files.

* hits over time per rule (hourly counts, one line per rule);
* the precision / recall tables (event and account level);
* a drawing of the largest ring: its accounts around a circle, the identifiers that link them
  inside, relationship edges in grey and hit edges in colour.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fraudtools.scoring import DETECTORS, LEVELS, OVERALL, Evaluation, reading

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#843c39", "#7b4173"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def hits_over_time_svg(hits: Sequence[Mapping[str, Any]], width: int = 900, height: int = 320) -> str:
    if not hits:
        return "<p>No hits.</p>"
    hours: dict[str, Counter[int]] = defaultdict(Counter)
    stamps = [datetime.fromisoformat(h["ts"].replace("Z", "+00:00")) for h in hits]
    start = min(stamps).replace(minute=0, second=0, microsecond=0)
    for hit, ts in zip(hits, stamps, strict=True):
        hours[hit["rule_id"]][int((ts - start).total_seconds() // 3600)] += 1
    span = max(max(c) for c in hours.values()) + 1
    peak = max(max(c.values()) for c in hours.values())
    left, right, top, bottom = 50, 220, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(hour: int) -> float:
        return left + plot_w * hour / max(1, span - 1)

    def y(count: int) -> float:
        return top + plot_h * (1 - count / peak)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="hits per hour per rule">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>']
    for tick in range(0, span, max(1, span // 12)):
        parts.append(f'<text x="{x(tick):.1f}" y="{top + plot_h + 16}" font-size="10" text-anchor="middle">'
                     f'{(start.hour + tick) % 24:02d}h</text>')
    for value in sorted({0, peak // 2, peak}):
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="10" text-anchor="end">{value}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="11">hour of day (UTC), from '
                 f'{_e(start.strftime("%Y-%m-%d %H:%M"))}</text>')
    for index, (rule, counts) in enumerate(sorted(hours.items())):
        colour = PALETTE[index % len(PALETTE)]
        points = " ".join(f"{x(h):.1f},{y(counts.get(h, 0)):.1f}" for h in range(span))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}"/>')
        ly = top + 14 * index
        parts.append(f'<rect x="{left + plot_w + 12}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 26}" y="{ly + 9}" font-size="11">{_e(rule)} '
                     f'({sum(counts.values())})</text>')
    parts.append("</svg>")
    return "".join(parts)


def ring_svg(accounts: Sequence[str], identifiers: Sequence[tuple[str, str, Sequence[str]]],
             hits: Sequence[Mapping[str, Any]], size: int = 640) -> str:
    """Accounts on a circle, identifiers inside, relationship edges grey, hit edges coloured."""
    width = size + 360  # room for account labels left and right of the circle
    cx, cy = width / 2, size / 2
    radius = size / 2 - 70
    position: dict[tuple[str, str], tuple[float, float]] = {}
    for i, account in enumerate(accounts):
        angle = 2 * math.pi * i / max(1, len(accounts)) - math.pi / 2
        position[("Account", account)] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    step = min(60.0, 1.2 * radius / max(1, len(identifiers)))
    for j, (label, key, _) in enumerate(identifiers):  # a column down the middle, labels beside it
        position[(label, key)] = (cx, cy + step * (j - (len(identifiers) - 1) / 2))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{size}" role="img" '
             f'aria-label="largest ring">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#c0392b"/></marker></defs>']
    for label, key, members in identifiers:
        ix, iy = position[(label, key)]
        for account in members:
            if ("Account", account) in position:
                ax, ay = position[("Account", account)]
                parts.append(f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{ix:.1f}" y2="{iy:.1f}" stroke="#bbb"/>')
    rules = sorted({h["rule_id"] for h in hits})
    colours = {rule: PALETTE[(i + 1) % len(PALETTE)] for i, rule in enumerate(rules)}
    badges: Counter[str] = Counter()
    for hit in hits:
        source = ("Account", hit["edge"]["from"]["value"])
        target = _vertex_of(hit["edge"]["to"])
        if source not in position:
            continue
        sx, sy = position[source]
        if target in position and target != source:
            tx, ty = position[target]
            colour = colours[hit["rule_id"]]
            parts.append(f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{tx:.1f}" y2="{ty:.1f}" stroke="{colour}" '
                         f'stroke-width="1.4" stroke-opacity="0.7" marker-end="url(#arrow)"/>')
        else:
            badges[source[1]] += 1
    for (label, key), (px, py) in position.items():
        if label == "Account":
            count = badges.get(key, 0)
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="9" fill="#34495e"/>')
            anchor = "start" if px >= cx else "end"
            dx = 13 if px >= cx else -13
            parts.append(f'<text x="{px + dx:.1f}" y="{py + 4:.1f}" font-size="11" text-anchor="{anchor}">{_e(key)}'
                         + (f" (+{count} other hit edges)" if count else "") + "</text>")
        else:
            parts.append(f'<rect x="{px - 8:.1f}" y="{py - 8:.1f}" width="16" height="16" fill="#f39c12"/>')
            parts.append(f'<text x="{px + 12:.1f}" y="{py + 4:.1f}" font-size="11" paint-order="stroke" '
                         f'stroke="white" stroke-width="3">{_e(label)}: {_e(key)}</text>')
    for i, rule in enumerate(rules):
        parts.append(f'<rect x="8" y="{8 + 14 * i}" width="10" height="10" fill="{colours[rule]}"/>'
                     f'<text x="22" y="{17 + 14 * i}" font-size="11">{_e(rule)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _vertex_of(end: Mapping[str, str]) -> tuple[str, str]:
    from chalicelib.entities import VERTEX_LABELS

    return VERTEX_LABELS.get(end["field"], end["field"]), end["value"]


def _table(evaluation: Evaluation, level: str) -> str:
    head = "".join(f"<th colspan=3>{_e(d)}</th>" for d in DETECTORS)
    sub = "".join("<th>P</th><th>R</th><th>F1</th>" for _ in DETECTORS)
    rows = []
    for scenario in [*evaluation.scenarios, OVERALL]:
        cells = []
        for detector in DETECTORS:
            score = evaluation.score(level, detector, scenario)
            for value in (score.precision, score.recall, score.f1):
                shade = "" if value is None else f' style="background: hsl({int(120 * value)}, 60%, 85%)"'
                cells.append(f"<td{shade}>{'–' if value is None else f'{100 * value:.0f}%'}</td>")
        positives = evaluation.score(level, "micro", scenario).positives
        name = f"<b>{_e(scenario)}</b>" if scenario == OVERALL else _e(scenario)
        rows.append(f"<tr><td>{name}</td><td>{positives}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th rowspan=2>scenario</th><th rowspan=2>positives</th>{head}</tr><tr>{sub}</tr>"
            + "".join(rows) + "</table>")


def html_report(*, title: str, summary: Mapping[str, Any], evaluation: Evaluation,
                hits: Sequence[Mapping[str, Any]], ring: tuple[Sequence[str], Sequence[tuple[str, str, Sequence[str]]]]
                | None, ring_hits: Sequence[Mapping[str, Any]], rules_file: str) -> str:
    facts = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in summary.items())
    tables = "".join(f"<h3>{level.capitalize()} level</h3>{_table(evaluation, level)}" for level in LEVELS)
    readings = "".join(f"<p>{_e(line).replace('**', '')}</p>" for line in reading(evaluation))
    ring_html = "<p>No ring of three or more accounts.</p>"
    if ring is not None:
        accounts, identifiers = ring
        links = "; ".join(f"{_e(label)} {_e(key)} ({len(members)})" for label, key, members in identifiers)
        ring_html = (f"<p>{len(accounts)} accounts linked by {links}; {len(ring_hits)} hit edges on them.</p>"
                     + ring_svg(accounts, identifiers, ring_hits))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
td:first-child {{ text-align: left; }}
h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
</style></head><body>
<h1>{_e(title)}</h1>
<ul>{facts}<li>rules: {_e(rules_file)}, version {_e(', '.join(evaluation.ruleset_versions))}</li></ul>
<h2>Hits over time, per rule</h2>
{hits_over_time_svg(hits)}
<h2>Precision and recall</h2>
<p>Enforce-mode hits only. micro = time-window rules,
macro = graph rules (shared_identifier, near_flagged, linked_component), combined = any rule,
composite = the composite rules alone. Per scenario: that scenario's events (accounts)
against all normal ones.</p>
{tables}
<h3>Reading</h3>
{readings}
<h2>The largest ring</h2>
{ring_html}
</body></html>
"""
