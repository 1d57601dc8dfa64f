"""Fake-judge answers in upstream's line format, for tests that run benchmark judging end to end.

`lines(a, b, c)` writes the three scores under every benchmark rubric's labels (OpenVE's and both
RefVIE subtasks'), so one answer parses under any of them: each rubric reads only its own labels,
as upstream's `check_format` does. Benchmark requests carry the case's instruction in the system
prompt (upstream's template), which is how `by_instruction` tells cases apart.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.fakes.openai_server import FakeRequest, Reply, error

LABELS = (
    ("Instruction Compliance", "Visual Quality & Stability", "Consistency & Detail Fidelity"),
    ("Identity Consistency & Compliance", "Temporal Consistency & Texture Fidelity", "Physical Integration & Tracking"),
    ("Reference Fidelity & Preservation", "Matting Quality & Temporal Stability", "Visual Harmony & Perspective"),
)


def lines(first: int, second: int, third: int, reason: str = "looks right") -> str:
    out = [f"Brief reasoning: {reason}"]
    for labels in LABELS:
        out += [f"{label}: {value}" for label, value in zip(labels, (first, second, third))]
    return "\n".join(out)


def upstream_answer(scores: tuple[int, int, int], reason: str = "looks right", **kw) -> Reply:
    return Reply(content=lines(*scores, reason=reason), **kw)


def by_instruction(table: dict[str, Reply], default: Reply | None = None) -> Callable[[FakeRequest], Reply]:
    """Answer `table[instruction]` for the instruction found in the system prompt (longest match wins)."""
    keys = sorted(table, key=len, reverse=True)

    def behave(req: FakeRequest) -> Reply:
        for key in keys:
            if key in req.system:
                return table[key]
        return default or error(400, "fake: no known instruction in the system prompt", kind="invalid_request_error")

    return behave
