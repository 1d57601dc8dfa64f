"""Score generated cases with the VLM judge: OPENVE rubric for instruction cases, REFVIE for reference cases.

The judge package does the hard parts (bounded concurrency, retries, parsing, the RefVIE cap
rule, the sqlite cache keyed by (case, checkpoint, judge model, rubric hash)). This module decides
what the judge sees and which ids key the cache:

- case key   = `<case_id>#<case hash[:12]>`: a case whose prompt or media changed is judged anew;
- checkpoint = `<checkpoint id>@<settings key>`: the same weights at another resolution, frame
  count, step count or seed produce other videos, so they must not reuse scores.

The judge sees the case id and instruction as text, then a few evenly spaced source frames, the
reference image (RefVIE) and the same frames of the edited output. Without a judge, evaluation
reports offline metrics only (`EvalResult.judged` is False).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiwi_platform.evaluation.categories import REFVIE
from kiwi_platform.evaluation.media import fit_frames, read_frames
from kiwi_platform.evaluation.suites import Case, Suite
from kiwi_platform.judge import (
    OPENVE,
    Judge,
    JudgeError,
    JudgeRequest,
    JudgeScore,
    Rubric,
)
from kiwi_platform.judge import (
    REFVIE as REFVIE_RUBRIC,
)
from kiwi_platform.judge.media import sample_indices


def rubric_for(case: Case) -> Rubric:
    return REFVIE_RUBRIC if case.suite == REFVIE else OPENVE


@dataclass
class JudgeOutcome:
    """Per-case judge results; `calls` counts cases sent to the endpoint (cache misses), `cached` the hits."""

    model: str
    scores: dict[str, JudgeScore] = field(default_factory=dict)
    errors: dict[str, JudgeError] = field(default_factory=dict)
    calls: int = 0
    cached: int = 0
    seconds: float = 0.0


def _sampled(frames: np.ndarray, count: int) -> np.ndarray:
    return frames[sample_indices(len(frames), count)]


def build_request(judge: Judge, suite: Suite, case: Case, output_path: Path, checkpoint_key: str) -> JudgeRequest:
    """The request for one case (few frames only, so a large batch stays light in memory)."""
    count = judge.client.video_frames
    edited = read_frames(output_path)
    t, h, w = edited.shape[:3]
    output = _sampled(edited, count)
    source = fit_frames(_sampled(read_frames(suite.path(case.src_video), t)[:t], count), w, h)
    images: list = [("Source video" if t > 1 else "Source image", source if t > 1 else source[0])]
    if case.ref_image:
        images.append(("Reference image", suite.path(case.ref_image)))
    images.append(("Edited video" if t > 1 else "Edited image", output if t > 1 else output[0]))
    text = f"Case id: {case.case_id}\nCategory: {case.category}\nInstruction: {case.prompt}"
    return JudgeRequest(
        case_id=f"{case.case_id}#{suite.case_hash(case)[:12]}",
        checkpoint_id=checkpoint_key,
        rubric=rubric_for(case),
        text=text,
        images=tuple(images),
    )


def judge_suite(
    judge: Judge,
    suite: Suite,
    outputs: dict[str, Path],
    checkpoint_id: str,
    settings_key: str,
    progress: Callable[[str, int, int], None] | None = None,
) -> JudgeOutcome:
    """Judge every case with an output, concurrently (bounded by the client), each at most once per cache key."""
    started = time.perf_counter()
    key = f"{checkpoint_id}@{settings_key}"
    outcome = JudgeOutcome(model=judge.client.model)
    cases = [c for c in suite.cases if c.case_id in outputs]
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
    return outcome
