"""Turn a judge's chat answer into validated integer scores, or reject it as malformed.

Why tolerant about the wrapping but strict about the content: chat models often wrap JSON in a
```json fence or add a sentence before it, which costs nothing to accept; a missing dimension, a
4.5 or a 7, on the other hand, would silently skew a benchmark table, so those are rejected
(`MalformedJudgeAnswer`) and the client asks again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kiwi_platform.judge.errors import MalformedJudgeAnswer
from kiwi_platform.judge.parse_lines import parse_lines
from kiwi_platform.judge.rubrics import Rubric

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class ParsedAnswer:
    scores: dict[str, int]
    reason: str


def _candidates(content: str) -> list[dict]:
    """JSON objects found in the answer: the whole text, fenced blocks, then any embedded object."""
    found: list[dict] = []
    texts = [content.strip()] + [m.group(1).strip() for m in _FENCE.finditer(content)]
    for text in texts:
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    if found:
        return found
    for match in re.finditer(r"\{", content):
        try:
            value, _ = _DECODER.raw_decode(content, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _norm(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _as_score(dim: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedJudgeAnswer(f"score for {dim!r} is not a number ({type(value).__name__})")
    if isinstance(value, float) and not value.is_integer():
        raise MalformedJudgeAnswer(f"score for {dim!r} is not an integer: {value!r}")
    score = int(value)
    if not 1 <= score <= 5:
        raise MalformedJudgeAnswer(f"score for {dim!r} is outside 1..5: {score}")
    return score


def parse_answer(content: str | None, rubric: Rubric) -> ParsedAnswer:
    """Validated scores for every rubric dimension (integers 1..5) plus the judge's reason.

    `lines` rubrics (the benchmark ones) are read as upstream reads them (`parse_lines`); `json`
    rubrics as described above. Raises `MalformedJudgeAnswer` saying what was wrong; extra keys
    the rubric does not ask for are ignored.
    """
    if rubric.answer_format == "lines":
        scores, why = parse_lines(content, rubric)
        return ParsedAnswer(scores=scores, reason=why)
    if not content or not content.strip():
        raise MalformedJudgeAnswer("empty answer", answer=content or "")
    objects = [obj for obj in _candidates(content) if isinstance(obj.get("scores"), dict)]
    if not objects:
        raise MalformedJudgeAnswer("no JSON object with a 'scores' field in the answer", answer=content)
    answer = objects[0]
    given = {_norm(k): v for k, v in answer["scores"].items()}
    try:
        missing = [dim for dim in rubric.dimensions if dim not in given]
        if missing:
            raise MalformedJudgeAnswer(f"answer lacks dimension(s) {', '.join(missing)}")
        scores = {dim: _as_score(dim, given[dim]) for dim in rubric.dimensions}
    except MalformedJudgeAnswer as exc:
        raise MalformedJudgeAnswer(f"{exc.message} (rubric {rubric.name})", answer=content) from None
    reason = answer.get("reason", "")
    return ParsedAnswer(scores=scores, reason=reason if isinstance(reason, str) else json.dumps(reason))


def apply_cap(scores: dict[str, int], rubric: Rubric) -> tuple[dict[str, int], bool]:
    """Clamp the rubric's capped dimensions to the cap dimension; returns (scores, whether any changed).

    For the benchmark rubrics this makes a stable but wrong edit (first score 1, others 5) score 1
    everywhere, as every upstream prompt asks, even if the judge ignored the rule it was given.
    """
    if rubric.cap_by is None:
        return dict(scores), False
    ceiling = scores[rubric.cap_by]
    out = dict(scores)
    for dim in rubric.capped:
        if out[dim] > ceiling:
            out[dim] = ceiling
    return out, out != scores
