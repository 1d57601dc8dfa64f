"""Score cases with a rubric: cache lookup, prompt assembly, one judge call, parse, cap, cache store.

Why a separate layer over the client: both users (RefVIE reference QC and benchmark evaluation) want
the same thing, "scores for this case under this rubric, once", and a batch call that never loses a
request: every input comes back as a `JudgeScore` or as a `JudgeError` saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kiwi_platform.judge.cache import JudgeCache
from kiwi_platform.judge.client import JudgeClient
from kiwi_platform.judge.errors import JudgeError
from kiwi_platform.judge.media import MediaLike
from kiwi_platform.judge.parse import ParsedAnswer, apply_cap, parse_answer
from kiwi_platform.judge.redact import redact, redacting_logger
from kiwi_platform.judge.rubrics import Rubric

log = redacting_logger(__name__)

# An image input, optionally with a label shown to the judge just before it ("Edited video", "Reference").
ImageInput = MediaLike | tuple[str, MediaLike]


@dataclass(frozen=True)
class JudgeScore:
    """Scores after the rubric's cap rule; `raw_scores` are what the judge said, `capped` whether they differ."""

    scores: dict[str, int]
    capped: bool
    reason: str
    cached: bool
    raw_scores: dict[str, int] = field(default_factory=dict)
    model: str = ""
    rubric: str = ""
    rubric_hash: str = ""

    @property
    def mean(self) -> float:
        return sum(self.scores.values()) / len(self.scores)

    def to_record(self) -> dict[str, Any]:
        return {
            "scores": self.scores,
            "raw_scores": self.raw_scores,
            "capped": self.capped,
            "reason": self.reason,
            "model": self.model,
            "rubric": self.rubric,
            "rubric_hash": self.rubric_hash,
        }


@dataclass(frozen=True)
class JudgeRequest:
    """One case to score; (case_id, checkpoint_id) must identify the inputs, since they key the cache."""

    case_id: str
    checkpoint_id: str
    rubric: Rubric
    text: str
    images: Sequence[ImageInput] = ()
    instruction: str = ""  # filled into a rubric's system template (the upstream benchmark prompts)


class Judge:
    """High-level scorer. `cache=None` disables caching (every call goes to the endpoint)."""

    def __init__(self, client: JudgeClient, cache: JudgeCache | None = None) -> None:
        self.client = client
        self.cache = cache

    def cache_key(self, case_id: str, checkpoint_id: str, rubric: Rubric) -> tuple[str, str, str, str]:
        return (case_id, checkpoint_id, self.client.model, rubric.rubric_hash)

    def _content(self, rubric: Rubric, text: str, images: Sequence[ImageInput]) -> list[dict[str, Any]]:
        prompt = rubric.user_prompt(text)
        parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}] if prompt else []
        for item in images:
            if isinstance(item, tuple):
                label, media = item
                parts.append({"type": "text", "text": f"{label}:"})
            else:
                media = item
            parts.extend(self.client.image_parts(media))
        return parts

    def score(
        self,
        case_id: str,
        checkpoint_id: str,
        rubric: Rubric,
        *,
        text: str,
        images: Sequence[ImageInput] = (),
        instruction: str = "",
    ) -> JudgeScore:
        """Scores for one case, from the cache when this (case, checkpoint, model, rubric) was judged before.

        Raises `JudgeError` (tagged with the case id) when the judge cannot give a valid answer.
        """
        key = self.cache_key(case_id, checkpoint_id, rubric)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return JudgeScore(
                    scores=hit["scores"],
                    capped=hit["capped"],
                    reason=redact(hit["reason"]),
                    cached=True,
                    raw_scores=hit.get("raw_scores", hit["scores"]),
                    model=self.client.model,
                    rubric=rubric.name,
                    rubric_hash=rubric.rubric_hash,
                )
        if (fatal := self.client.failed_for_good) is not None:  # a bad key or URL: no point encoding images
            raise JudgeError(fatal.message, code=fatal.code, status=fatal.status, case_id=case_id, reason=fatal.reason)
        try:
            content = self._content(rubric, text, images)
        except (ValueError, OSError) as exc:
            raise JudgeError(
                f"case {case_id}: cannot prepare judge input: {exc}", code="input", case_id=case_id
            ) from None
        try:
            parsed: ParsedAnswer = self.client.chat(
                rubric.system_prompt(instruction), content, lambda answer: parse_answer(answer, rubric)
            )
        except JudgeError as exc:
            raise exc.for_case(case_id) from None
        scores, capped = apply_cap(parsed.scores, rubric)
        result = JudgeScore(
            scores=scores,
            capped=capped,
            reason=redact(parsed.reason),  # the model's own words: an echoing endpoint could put the key there
            cached=False,
            raw_scores=parsed.scores,
            model=self.client.model,
            rubric=rubric.name,
            rubric_hash=rubric.rubric_hash,
        )
        if self.cache is not None:
            self.cache.put(key, result.to_record())
        return result

    def score_request(self, request: JudgeRequest) -> JudgeScore | JudgeError:
        """`score` for one request, with any failure returned as a `JudgeError` value instead of raised."""
        try:
            return self.score(
                request.case_id,
                request.checkpoint_id,
                request.rubric,
                text=request.text,
                images=request.images,
                instruction=request.instruction,
            )
        except JudgeError as exc:
            return exc if exc.case_id else exc.for_case(request.case_id)
        except Exception as exc:  # noqa: BLE001 - a batch must report every request, whatever went wrong
            log.exception("judge request %s failed unexpectedly", request.case_id)  # redacted, no traceback
            return JudgeError(
                f"case {request.case_id}: unexpected {type(exc).__name__}: {exc}",
                code="internal",
                case_id=request.case_id,
            )

    def score_many(self, requests: Sequence[JudgeRequest]) -> list[JudgeScore | JudgeError]:
        """Score a batch concurrently (at most `client.max_concurrency` in flight), results in input order.

        Requests sharing a cache key are judged once. Each input yields a `JudgeScore` or a `JudgeError`.
        """
        requests = list(requests)
        first: dict[tuple[str, ...], int] = {}
        for index, req in enumerate(requests):
            first.setdefault(self.cache_key(req.case_id, req.checkpoint_id, req.rubric), index)
        unique = sorted(first.values())
        results = dict(zip(unique, self.client.map(self.score_request, [requests[i] for i in unique])))
        out: list[JudgeScore | JudgeError] = []
        for req in requests:
            index = first[self.cache_key(req.case_id, req.checkpoint_id, req.rubric)]
            out.append(results[index])
        return out
