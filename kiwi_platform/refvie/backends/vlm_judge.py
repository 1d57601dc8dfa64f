"""ReferenceJudge backed by a VLM behind an OpenAI-compatible endpoint (`kiwi_platform.judge`).

How: the reference image and the target's edited region go to the judge with the instruction and the
edit type, under the `REFERENCE_MATCH` rubric (one dimension, 1-5); the score maps linearly to
[0, 1] ((s - 1) / 4). The case id is a hash of everything the judge sees, so the judge cache returns
the same answer when a batch is re-materialized. A misconfigured judge (no endpoint, bad key, wrong
model) stops the run with its one-line error; a judge that fails on one sample (timeouts after
retries, unparseable answers) quarantines that sample as `qc_backend_error`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from kiwi_platform.refvie.types import SampleRejected

BACKEND = "vlm judge"
CHECKPOINT_ID = "refvie-reference-qc"  # the cache key's "what is being judged" part: RefVIE references
FATAL_CODES = frozenset({"config", "auth", "bad_request"})  # fixing these needs the user, not a retry


def case_id(reference: np.ndarray, target_region: np.ndarray, prompt: str, edit_type: str) -> str:
    """A content hash of the judge's inputs (pixels, shapes, instruction, type)."""
    digest = hashlib.sha256()
    for array in (reference, target_region):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    digest.update(f"\0{prompt}\0{edit_type}".encode())
    return digest.hexdigest()[:32]


class VlmReferenceJudge:
    """`ReferenceJudge` via `kiwi_platform.judge.Judge`; pass `judge=` to reuse one, else one is built.

    Building one reads the endpoint from arguments or KIWI_JUDGE_BASE_URL / KIWI_JUDGE_MODEL /
    KIWI_JUDGE_API_KEY; `cache_path` enables the sqlite answer cache.
    """

    name = "vlm"

    def __init__(
        self,
        judge: Any = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        cache_path: str | Path | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self._judge = judge
        self._client_args = dict(base_url=base_url, model=model, api_key=api_key, **(client_options or {}))
        self._cache_path = cache_path

    @property
    def judge(self) -> Any:
        """The Judge, built on first use (so configuring the backend does not need a live endpoint)."""
        if self._judge is None:
            from kiwi_platform.judge import Judge, JudgeCache, JudgeClient

            cache = JudgeCache(self._cache_path) if self._cache_path else None
            self._judge = Judge(JudgeClient(**self._client_args), cache)
        return self._judge

    def score(self, reference: np.ndarray, target_region: np.ndarray, prompt: str, edit_type: str) -> float:
        from kiwi_platform.judge import JudgeError, rubrics

        rubric = rubrics.REFERENCE_MATCH
        text = f"Instruction: {prompt.strip()}\nEdit type: {edit_type}"
        try:
            result = self.judge.score(
                case_id(reference, target_region, prompt, edit_type),
                CHECKPOINT_ID,
                rubric,
                text=text,
                images=[("Edited target region", target_region), ("Reference", reference)],
            )
        except JudgeError as exc:
            if exc.code in FATAL_CODES:
                raise
            raise SampleRejected("qc_backend_error", f"{BACKEND}: {exc.message}") from exc
        raw = result.scores.get(rubric.dimensions[0])
        if raw is None:
            raise SampleRejected("qc_backend_error", f"{BACKEND}: the answer has no {rubric.dimensions[0]} score")
        return float(min(max((int(raw) - 1) / 4.0, 0.0), 1.0))
