"""The picture of an electronic seal (印章图样): a red ring, the department's name along the
top arc, a five-pointed star and the seal's purpose below — generated, never drawn by hand."""

import math
from html import escape


def _star(cx: float, cy: float, r: float) -> str:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.382
        angle = math.pi / 2 + i * math.pi / 5
        points.append(f"{cx + radius * math.cos(angle):.2f},{cy - radius * math.sin(angle):.2f}")
    return " ".join(points)


def seal_svg(department_name: str, purpose: str, *, size: int = 200) -> str:
    """An SVG seal: each character of the department name on the arc, upright to the ring."""
    c, ring = size / 2, size / 2 - 6
    chars = list(department_name)
    span = min(240.0, 22.0 * len(chars))  # degrees of arc the name covers
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'width="{size}" height="{size}" role="img" aria-label="{escape(department_name)}">',
        f'<circle cx="{c}" cy="{c}" r="{ring}" fill="none" stroke="#d21f1f" stroke-width="5"/>',
        f'<polygon points="{_star(c, c, size * 0.16)}" fill="#d21f1f"/>',
    ]
    for i, char in enumerate(chars):
        angle = -span / 2 + span * (i + 0.5) / len(chars)  # 0 degrees is straight up
        rad = math.radians(angle)
        x, y = c + (ring - 22) * math.sin(rad), c - (ring - 22) * math.cos(rad)
        parts.append(
            f'<text x="{x:.2f}" y="{y:.2f}" font-size="{size * 0.1:.0f}" fill="#d21f1f" '
            f'text-anchor="middle" dominant-baseline="central" '
            f'transform="rotate({angle:.2f} {x:.2f} {y:.2f})">{escape(char)}</text>'
        )
    parts.append(
        f'<text x="{c}" y="{c + size * 0.3:.2f}" font-size="{size * 0.075:.0f}" fill="#d21f1f" '
        f'text-anchor="middle">{escape(purpose)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
