"""Charts for the quality report as inline SVG: the report is one file that opens from disk, offline.

Small on purpose: bars (optionally stacked), lines, a heat map and a row of status squares. Every
label is escaped; colours come from ``STATUS_COLOURS`` and ``SERIES_COLOURS``.
"""

from __future__ import annotations

from html import escape
from collections.abc import Sequence

STATUS_COLOURS = {"pass": "#2e7d32", "warn": "#f9a825", "fail": "#c62828", "error": "#6a1b9a", "none": "#bdbdbd"}
SERIES_COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#f9a825", "#6a1b9a", "#00838f", "#ef6c00", "#5d4037",
                  "#ad1457", "#546e7a"]
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def bars(labels: Sequence[str], series: dict[str, Sequence[float]], title: str, width: int = 760,
         height: int = 220, label_every: int = 1) -> str:
    """Stacked bars, one per label; a legend of the series names."""
    left, bottom, top = 48, 40, 22
    n = max(len(labels), 1)
    totals = [sum(float(s[i] or 0) for s in series.values()) for i in range(len(labels))]
    high = _nice_max(max(totals, default=0))
    slot = (width - left - 10) / n
    plot_h = height - bottom - top
    body = [f'<text x="{left}" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
            f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#555"/>',
            f'<text x="{left - 4}" y="{top + 4}" {FONT} text-anchor="end">{high:g}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" {FONT} text-anchor="end">0</text>']
    for i, label in enumerate(labels):
        y = top + plot_h
        for k, (name, values) in enumerate(series.items()):
            v = float(values[i] or 0)
            h = plot_h * v / high
            y -= h
            if h > 0:
                body.append(f'<rect x="{left + i * slot + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" '
                            f'height="{h:.1f}" fill="{SERIES_COLOURS[k % len(SERIES_COLOURS)]}">'
                            f'<title>{escape(str(label))} {escape(name)}: {v:g}</title></rect>')
        if i % label_every == 0:
            body.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 14}" {FONT} '
                        f'text-anchor="middle">{escape(str(label))}</text>')
    body += _legend(list(series), left, height - 8)
    return _svg(width, height, body, title)


def lines(labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str, width: int = 760,
          height: int = 220, label_every: int = 1, percent: bool = False) -> str:
    """One line per series over the labels (gaps where a value is None)."""
    left, bottom, top = 48, 40, 22
    values = [float(v) for s in series.values() for v in s if v is not None]
    high = _nice_max(max(values, default=0))
    n = max(len(labels) - 1, 1)
    plot_w, plot_h = width - left - 10, height - bottom - top
    fmt = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:g}")
    body = [f'<text x="{left}" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
            f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#555"/>',
            f'<text x="{left - 4}" y="{top + 4}" {FONT} text-anchor="end">{fmt(high)}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" {FONT} text-anchor="end">{fmt(0)}</text>']
    for k, (name, vals) in enumerate(series.items()):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        points = [(left + plot_w * i / n, top + plot_h * (1 - float(v) / high)) for i, v in enumerate(vals)
                  if v is not None]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}">'
                        f'<title>{escape(name)}</title></polyline>')
    for i, label in enumerate(labels):
        if i % label_every == 0:
            body.append(f'<text x="{left + plot_w * i / n:.1f}" y="{top + plot_h + 14}" {FONT} '
                        f'text-anchor="middle">{escape(str(label))}</text>')
    body += _legend(list(series), left, height - 8)
    return _svg(width, height, body, title)


def heatmap(rows: Sequence[str], columns: Sequence[str], values: dict[tuple[str, str], float | None],
            title: str, cell: int = 34) -> str:
    """A grid of shares (0..1): darker is higher; the value is written in each cell."""
    left, top = 70, 36
    width, height = left + cell * len(columns) + 10, top + 18 * len(rows) + 10
    body = [f'<text x="4" y="14" {FONT} font-weight="bold">{escape(title)}</text>']
    for j, c in enumerate(columns):
        body.append(f'<text x="{left + j * cell + cell / 2}" y="{top - 6}" {FONT} text-anchor="middle">'
                    f'{escape(str(c))}</text>')
    for i, r in enumerate(rows):
        y = top + i * 18
        body.append(f'<text x="{left - 4}" y="{y + 13}" {FONT} text-anchor="end">{escape(str(r))}</text>')
        for j, c in enumerate(columns):
            v = values.get((r, c))
            if v is None:
                continue
            shade = int(235 - 170 * max(0.0, min(1.0, float(v))))
            ink = "#fff" if shade < 140 else "#000"
            body.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="17" '
                        f'fill="rgb({shade},{min(shade + 10, 255)},255)"/>'
                        f'<text x="{left + j * cell + cell / 2}" y="{y + 12}" {FONT} fill="{ink}" '
                        f'text-anchor="middle">{float(v):.0%}</text>')
    return _svg(width, height, body, title)


def status_squares(statuses: Sequence[str], title: str) -> str:
    """The last results of a check, oldest first, one coloured square each."""
    body = [f'<rect x="{i * 12}" y="0" width="10" height="10" fill="{STATUS_COLOURS.get(s, STATUS_COLOURS["none"])}">'
            f'<title>{escape(s)}</title></rect>' for i, s in enumerate(statuses)]
    return _svg(max(12 * len(statuses), 12), 10, body, title)


def _legend(names: list[str], x: float, y: float) -> list[str]:
    out = []
    for k, name in enumerate(names):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        out.append(f'<rect x="{x + k * 120}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + k * 120 + 14}" y="{y}" {FONT}>{escape(name)}</text>')
    return out
