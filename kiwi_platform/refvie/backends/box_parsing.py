"""Read a bounding box out of a VLM's free-text answer.

Why several formats: Qwen2.5-VL is trained to answer grounding prompts with JSON
(`[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]`, often inside a ```json fence), Qwen2-VL with box
tokens (`<|box_start|>(x1,y1),(x2,y2)<|box_end|>`), and fine-tuned or smaller models drift to a bare
list of four numbers. We accept all three, in that order of trust, and return the raw numbers in
the model's own coordinate space; mapping to frame pixels is the caller's job.
"""

from __future__ import annotations

import json
import re

_NUM = r"-?\d+(?:\.\d+)?"
_BOX_TOKENS = re.compile(
    rf"<\|box_start\|>\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*<\|box_end\|>"
)
_BRACKETED = re.compile(rf"[\[(]\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*[\])]")
_FOUR_NUMBERS = re.compile(rf"({_NUM})\s*[,;\s]\s*({_NUM})\s*[,;\s]\s*({_NUM})\s*[,;\s]\s*({_NUM})")
_JSON_KEYS = ("bbox_2d", "bbox", "box", "box_2d")

RawBox = tuple[float, float, float, float]


def _from_json_value(value: object) -> RawBox | None:
    """First box found in a decoded JSON value (a dict with a bbox key, a list of those, or a list of 4 numbers)."""
    if isinstance(value, dict):
        for key in _JSON_KEYS:
            if key in value:
                return _from_json_value(value[key])
        return None
    if isinstance(value, list):
        if len(value) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return tuple(float(v) for v in value)  # type: ignore[return-value]
        for item in value:
            found = _from_json_value(item)
            if found is not None:
                return found
    return None


def _json_candidates(answer: str) -> list[str]:
    """Fenced blocks first, then the outermost [...] or {...} span of the answer."""
    found = re.findall(r"```(?:json)?\s*(.*?)```", answer, flags=re.DOTALL)
    for open_, close in (("[", "]"), ("{", "}")):
        start, end = answer.find(open_), answer.rfind(close)
        if 0 <= start < end:
            found.append(answer[start : end + 1])
    return found


def parse_box(answer: str) -> RawBox | None:
    """(x1, y1, x2, y2) as the model wrote it, or None when the answer holds no box."""
    for candidate in _json_candidates(answer):
        try:
            found = _from_json_value(json.loads(candidate))
        except (json.JSONDecodeError, ValueError):
            continue
        if found is not None:
            return found
    for pattern in (_BOX_TOKENS, _BRACKETED, _FOUR_NUMBERS):
        match = pattern.search(answer)
        if match:
            return tuple(float(g) for g in match.groups())  # type: ignore[return-value]
    return None


def to_frame_box(
    raw: RawBox, scale_x: float, scale_y: float, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """Scale model coordinates to frame pixels, order the corners, clamp; None if nothing is left.

    The result follows `types.Box`: (x0, y0, x1, y1) with x1/y1 exclusive, so it is rounded outward.
    """
    import math

    x1, y1, x2, y2 = raw
    xs = sorted((x1 * scale_x, x2 * scale_x))
    ys = sorted((y1 * scale_y, y2 * scale_y))
    x0, x1_ = max(0, math.floor(xs[0])), min(width, math.ceil(xs[1]))
    y0, y1_ = max(0, math.floor(ys[0])), min(height, math.ceil(ys[1]))
    if x1_ <= x0 or y1_ <= y0:
        return None
    return (x0, y0, x1_, y1_)
