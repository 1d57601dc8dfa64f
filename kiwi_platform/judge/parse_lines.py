"""Read a `lines` answer exactly as upstream's `check_format` reads it (eval_openve_gemini.py, eval_refvie_gemini.py).

Upstream's rule, kept to the character, so an answer counts here if and only if it counts there:
- a score line is a line (`str.splitlines`) that *starts with* `<label>:`, no leading spaces, no
  markdown around the label (`**Instruction Compliance:** 4` is not a score line);
- its value is the text after the line's *last* colon, stripped, read as `int(float(value))`:
  `4`, `4.0`, ` 4.7` (-> 4) and `4e0` count; `4/5`, `four`, `nan`, `inf` make the whole answer invalid;
- a value outside 1..5 after that truncation (`0.5`, `6`, `-1`) makes the whole answer invalid;
- a label given twice: the last line wins (as upstream's OpenVE reader);
- a dimension with no line: invalid (OpenVE upstream fails on it too).

Deliberate differences, all on answers upstream's RefVIE reader lets through although they are
incomplete (documented in tests/fixtures/upstream/judge_golden.README.md): RefVIE answers missing a line, or
carrying the other subtask's labels, are rejected and asked again instead of being stored with
fewer than three scores; scores are matched to dimensions by label, not by line order.
Every rejection raises `MalformedJudgeAnswer`, so the client asks again (upstream: 3 attempts).
"""

from __future__ import annotations

from kiwi_platform.judge.errors import MalformedJudgeAnswer
from kiwi_platform.judge.rubrics import Rubric

REASONING_LABEL = "Brief reasoning:"


def upstream_value(text: str) -> int | None:
    """`int(float(text.strip()))` when it parses and lies in 1..5 (upstream's test), else None."""
    try:
        value = int(float(text.strip()))
    except (ValueError, OverflowError):
        return None
    return value if value in range(1, 6) else None


def parse_lines(content: str | None, rubric: Rubric) -> tuple[dict[str, int], str]:
    """(scores by dimension, the judge's "Brief reasoning" text) or `MalformedJudgeAnswer` saying what was wrong."""
    if not content or not content.strip():
        raise MalformedJudgeAnswer("empty answer", answer=content or "")
    scores: dict[str, int] = {}
    reason = ""
    for line in content.splitlines():
        if line.startswith(REASONING_LABEL):
            reason = line[len(REASONING_LABEL) :].strip()
            continue
        for dim, label in rubric.dimension_help:
            if line.startswith(f"{label}:"):
                raw = line.split(":")[-1].strip()
                value = upstream_value(raw)
                if value is None:
                    raise MalformedJudgeAnswer(
                        f"'{label}' is {raw[:20]!r}, not a score from 1 to 5 (rubric {rubric.name})", answer=content
                    )
                scores[dim] = value
                break
    missing = [label for dim, label in rubric.dimension_help if dim not in scores]
    if missing:
        wanted = "; ".join(f"'{label}: <1-5>'" for label in missing)
        raise MalformedJudgeAnswer(f"answer lacks the line(s) {wanted} (rubric {rubric.name})", answer=content)
    return scores, reason
