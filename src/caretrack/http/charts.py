"""Bar charts as SVG drawn on the server: no script, nothing for the CSP to block, and
readable without colour (each bar carries its figures as text; the SVG's title and desc say
what it shows to a screen reader). A chart with nothing to show says so in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from markupsafe import Markup

WIDTH = 360
ROW = 34
LABEL_H = 14
BAR_H = 14


NO_DATA = "No data for this period."


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    target: int | None = None
    figures: str | None = None  # the caption, e.g. "2 of 4 (50%)"; by default "2 / 4"

    @property
    def caption(self) -> str:
        if self.figures is not None:
            return self.figures
        return f"{self.value}" + (f" / {self.target}" if self.target is not None else "")


def colour(bar: Bar) -> str:
    if not bar.target:
        return "#0b6e63"
    ratio = bar.value / bar.target
    return "#1a7f37" if ratio >= 1 else "#9a6700" if ratio >= 0.5 else "#b42318"


def _open_svg(height: int, title: str, desc: str) -> list[str]:
    return [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
            f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title, {chr(34): "&quot;"})}">',
            f"<title>{escape(title)}</title>", f"<desc>{escape(desc)}</desc>"]


def _no_data() -> Markup:
    return Markup(f'<p class="muted chart-empty">{NO_DATA}</p>')


def bar_chart(bars: Sequence[Bar], *, title: str, unit: str = "") -> Markup:
    """One horizontal bar per item. A bar with a target is drawn against its own target: the track
    is the target, filled to the share done (full at or past it), so a 0-of-1 weekly task and a
    20-of-28 daily one read alike at a glance. Bars without a target share one scale."""
    if not any(b.value or b.target for b in bars):
        return _no_data()
    shared_max = max((b.value for b in bars if b.target is None), default=0) or 1
    height = len(bars) * ROW + 8
    desc = "; ".join(f"{b.label}: {b.caption}{unit}" for b in bars)
    parts = _open_svg(height, title, desc)
    inner = WIDTH - 140  # room for "12 of 28 (43%)" or "3 done, none expected"
    for i, bar in enumerate(bars):
        y = i * ROW + 4
        if bar.target is None:
            share = bar.value / shared_max
        else:
            share = min(1.0, bar.value / bar.target) if bar.target else (1.0 if bar.value else 0.0)
        width = round(inner * share)
        caption = bar.caption + unit
        parts.append(f'<g><title>{escape(bar.label)}: {escape(caption)}</title>')
        parts.append(f'<text x="0" y="{y + 11}" font-size="11" fill="#1d2733">{escape(bar.label[:60])}</text>')
        parts.append(f'<rect x="0" y="{y + LABEL_H + 2}" width="{inner}" height="{BAR_H}" fill="#eef1f4"/>')
        if width:
            parts.append(f'<rect x="0" y="{y + LABEL_H + 2}" width="{width}" height="{BAR_H}" fill="{colour(bar)}"/>')
        if bar.target:  # the target: the end of the track
            parts.append(f'<line x1="{inner}" x2="{inner}" y1="{y + LABEL_H}" y2="{y + LABEL_H + BAR_H + 4}" '
                         f'stroke="#1d2733" stroke-width="2"/>')
        parts.append(f'<text x="{inner + 6}" y="{y + LABEL_H + 13}" font-size="11" fill="#1d2733">'
                     f'{escape(caption)}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(points: Sequence[tuple[str, int]], *, title: str) -> Markup:
    """Vertical columns (e.g. completions per day), labelled under each column when they fit."""
    if not any(v for _, v in points):
        return _no_data()
    height, base = 150, 120
    top = max(v for _, v in points) or 1
    step = WIDTH / len(points)
    desc = "; ".join(f"{label}: {value}" for label, value in points if value)
    parts = [*_open_svg(height, title, desc),
             f'<line x1="0" x2="{WIDTH}" y1="{base}" y2="{base}" stroke="#d8dee6"/>']
    every = max(1, round(len(points) / 10))
    for i, (label, value) in enumerate(points):
        h = round((base - 16) * value / top)
        x = i * step
        parts.append(f'<g><title>{escape(label)}: {value}</title>'
                     f'<rect x="{x + step * 0.15:.1f}" y="{base - h}" width="{step * 0.7:.1f}" height="{h}" '
                     f'fill="#0b6e63"/>')
        if value:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{base - h - 3}" font-size="10" text-anchor="middle" '
                         f'fill="#1d2733">{value}</text>')
        if i % every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{base + 14}" font-size="9" text-anchor="middle" '
                         f'fill="#5b6776">{escape(label)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
