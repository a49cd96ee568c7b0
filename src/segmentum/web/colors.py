"""Colour-blind-safe sequential scales for cells drawn in HTML (the RFM grid): viridis and
cividis, sampled at nine stops from matplotlib's definitions, interpolated linearly, with
a text colour that keeps the contrast readable on each fill."""

from __future__ import annotations

import math

__all__ = ["SCALES", "fill", "text_on", "gradient"]

SCALES: dict[str, tuple[str, ...]] = {
    "cividis": ("#00224e", "#123570", "#3b496c", "#575d6d", "#707173", "#8a8678", "#a59c74",
                "#c3b369", "#fee838"),
    "viridis": ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
                "#addc30", "#fde725"),
}


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def fill(scale: str, t: float) -> str:
    """The colour at ``t`` in [0, 1] on ``scale`` (clamped)."""
    stops = SCALES[scale]
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    a, b = _rgb(stops[i]), _rgb(stops[i + 1])
    mix = tuple(round(x + (y - x) * (t - i)) for x, y in zip(a, b, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*mix)


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(hex_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_on(background: str) -> str:
    """Black or white, whichever contrasts more with ``background`` (WCAG formula)."""
    lum = _luminance(background)
    return "#000000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#ffffff"


def gradient(scale: str) -> str:
    """A CSS linear-gradient of the scale, for a legend."""
    return f"linear-gradient(to right, {', '.join(SCALES[scale])})"


def sqrt_share(value: float, top: float) -> float:
    """Where ``value`` sits between 0 and ``top`` on a square-root scale (skewed counts and
    revenue stay distinguishable below the largest cell)."""
    return math.sqrt(value / top) if top > 0 and value > 0 else 0.0
