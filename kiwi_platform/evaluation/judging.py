"""Score generated cases with the VLM judge, with upstream's rubric for the case's benchmark and category.

OpenVE cases get the prompt of their `edited_type`, RefVIE cases the subject or background prompt
(`kiwi_platform.judge.upstream_rubrics`); cases of a kind upstream does not judge (ImgEdit) are
left unjudged, which is not an error (their tables are offline metrics).

The judge package does the hard parts (bounded concurrency, retries, parsing, the RefVIE cap
rule, the sqlite cache keyed by (case, checkpoint, judge model, rubric hash)). This module decides
what the judge sees and which ids key the cache:

- case key   = `<case_id>#<case hash[:12]>`: a case whose prompt or media changed is judged anew;
- checkpoint = `<checkpoint id>@<settings key>`: the same weights at another resolution, frame
  count, step count or seed produce other videos, so they must not reuse scores.

The judge sees what upstream's scripts send, in the same order: the rubric with the instruction
filled in as the system prompt, then the reference image (RefVIE), the source and the edited
video, each introduced by a short label. Upstream uploads whole videos to Gemini; an
OpenAI-compatible endpoint takes images, so a video is a few evenly spaced frames (`video_frames`). Without a judge, evaluation
reports offline metrics only (`EvalResult.judged` is False).

When judging fails (`judge_suite` raises a one-line `JudgeError`, which fails the step):
- a fatal error (bad key, URL or model, plain http refused): at once, after one request;
- every case failed (e.g. HTTP 500 or timeouts that outlast the retries): a judged run with zero
  judge scores would read as success, so it fails instead, counting the reasons.
Some cases failing is data, as quarantine is: the run continues, and each failed case carries its
classified reason (`http_500`, `timeout`, `malformed_answer`...; `JudgeOutcome.error_counts`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiwi_platform.evaluation.media import fit_frames, read_frames
from kiwi_platform.evaluation.suites import Case, Suite
from kiwi_platform.judge import Judge, JudgeError, JudgeRequest, JudgeScore, Rubric, benchmark_rubric
from kiwi_platform.judge.media import sample_indices


def rubric_for(case: Case) -> Rubric | None:
    """Upstream's rubric for the case's benchmark and category (None: upstream does not judge such cases)."""
    return benchmark_rubric(case.suite, case.category)


@dataclass
class JudgeOutcome:
    """Per-case judge results; `calls` counts cases sent to the endpoint (cache misses), `cached` the hits."""

    model: str
    scores: dict[str, JudgeScore] = field(default_factory=dict)
    errors: dict[str, JudgeError] = field(default_factory=dict)
    calls: int = 0
    cached: int = 0
    seconds: float = 0.0

    @property
    def error_counts(self) -> dict[str, int]:
        """Failed cases per classified reason, most common first (e.g. {"http_500": 2, "timeout": 1})."""
        return dict(Counter(err.reason for err in self.errors.values()).most_common())

    def error_summary(self) -> str:
        """`http_500 x2, timeout x1` (empty when every case was scored)."""
        return ", ".join(f"{reason} x{n}" for reason, n in self.error_counts.items())


def check_outcome(outcome: JudgeOutcome) -> None:
    """Raise the one-line `JudgeError` that must fail the step: a fatal error, or no case scored at all."""
    fatal = [err for err in outcome.errors.values() if err.fatal]
    if fatal:
        first = max(fatal, key=lambda err: err.attempts)  # the call that met the error, not one stopped by it
        raise JudgeError(first.message, code=first.code, status=first.status, reason=first.reason)
    if outcome.errors and not outcome.scores:
        last = next(reversed(outcome.errors.values()))
        raise JudgeError(
            f"the judge scored none of the {len(outcome.errors)} cases ({outcome.error_summary()}); "
            f"no judge scores recorded; last error: {last.message}",
            code=last.code,
            status=last.status,
            reason="all_cases_failed",
        )


def _sampled(frames: np.ndarray, count: int) -> np.ndarray:
    return frames[sample_indices(len(frames), count)]


def build_request(judge: Judge, suite: Suite, case: Case, output_path: Path, checkpoint_key: str) -> JudgeRequest:
    """The request for one case (few frames only, so a large batch stays light in memory)."""
    rubric = rubric_for(case)
    if rubric is None:
        raise ValueError(f"no upstream judge rubric for {case.suite} category {case.category!r}")
    count = judge.client.video_frames
    edited = read_frames(output_path)
    t, h, w = edited.shape[:3]
    output = _sampled(edited, count)
    source = fit_frames(_sampled(read_frames(suite.path(case.src_video), t)[:t], count), w, h)
    images: list = []
    if case.ref_image:  # upstream's order: reference image, original video, edited video
        images.append(("Reference image", suite.path(case.ref_image)))
    images.append(("Original video" if t > 1 else "Original image", source if t > 1 else source[0]))
    images.append(("Edited video" if t > 1 else "Edited image", output if t > 1 else output[0]))
    return JudgeRequest(
        case_id=f"{case.case_id}#{suite.case_hash(case)[:12]}",
        checkpoint_id=checkpoint_key,
        rubric=rubric,
        text="",
        images=tuple(images),
        instruction=case.prompt,
    )


def judge_suite(
    judge: Judge,
    suite: Suite,
    outputs: dict[str, Path],
    checkpoint_id: str,
    settings_key: str,
    progress: Callable[[str, int, int], None] | None = None,
) -> JudgeOutcome:
    """Judge every case with an output, concurrently (bounded by the client), each at most once per cache key.

    Raises `JudgeError` (one line) on a fatal judge error or when no case could be scored (`check_outcome`).
    """
    started = time.perf_counter()
    key = f"{checkpoint_id}@{settings_key}"
    outcome = JudgeOutcome(model=judge.client.model)
    cases = [c for c in suite.cases if c.case_id in outputs and rubric_for(c) is not None]
    pending: list[tuple[str, JudgeRequest]] = []
    for case in cases:
        try:
            pending.append((case.case_id, build_request(judge, suite, case, outputs[case.case_id], key)))
        except (OSError, ValueError) as exc:
            outcome.errors[case.case_id] = JudgeError(
                f"case {case.case_id}: cannot prepare judge input: {exc}", code="input", case_id=case.case_id
            )
    results = judge.score_many([request for _, request in pending])
    for done, ((case_id, _), result) in enumerate(zip(pending, results), start=1):
        if isinstance(result, JudgeScore):
            outcome.scores[case_id] = result
            outcome.cached += int(result.cached)
            outcome.calls += int(not result.cached)
        else:
            outcome.errors[case_id] = result
            outcome.calls += int(result.attempts > 0)
        if progress:
            progress("judge", done, len(pending))
    outcome.seconds = time.perf_counter() - started
    check_outcome(outcome)
    return outcome
