"""VLM judge: rubric-based 1-5 scores from an OpenAI-compatible chat endpoint, cached and concurrent.

Used by RefVIE reference QC (`REFERENCE_MATCH`) and benchmark evaluation (upstream's rubrics:
`OPENVE_RUBRICS[edited_type]`, `REFVIE_RUBRICS[subtask]`, answers read as upstream's `check_format`).

    client = JudgeClient()                     # KIWI_JUDGE_BASE_URL / KIWI_JUDGE_MODEL / KIWI_JUDGE_API_KEY
    judge = Judge(client, JudgeCache(home / "judge-cache.sqlite"))
    score = judge.score("case-1", "ckpt-abc", REFVIE_RUBRICS["subject"], instruction="Replace ...", text="",
                        images=[("Reference image", ref_path), ("Edited video", edited_frames)])

Failures are `JudgeError`s: one line, a `code`, a stored-safe `reason` (`http_401`, `timeout`,
`malformed_answer`...) and `fatal` for a bad key, URL or model (one request, never retried). The
API key goes only into the Authorization header, over https or to a loopback host (else refused
unless KIWI_JUDGE_ALLOW_INSECURE_HTTP=1); `redact` masks it in messages, logs and stored answers.
"""

from kiwi_platform.judge.cache import JudgeCache
from kiwi_platform.judge.client import ENV_ALLOW_INSECURE_HTTP, ENV_API_KEY, ENV_BASE_URL, ENV_MODEL, JudgeClient
from kiwi_platform.judge.errors import FATAL_CODES, JudgeError, MalformedJudgeAnswer
from kiwi_platform.judge.judge import Judge, JudgeRequest, JudgeScore
from kiwi_platform.judge.parse import ParsedAnswer, apply_cap, parse_answer
from kiwi_platform.judge.redact import redact, register_secret
from kiwi_platform.judge.rubrics import REFERENCE_MATCH, RUBRICS, Rubric, get_rubric
from kiwi_platform.judge.upstream_rubrics import (
    BENCHMARK_DIMENSIONS,
    OPENVE_RUBRICS,
    REFVIE_RUBRICS,
    benchmark_rubric,
)

__all__ = [
    "ENV_ALLOW_INSECURE_HTTP",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "FATAL_CODES",
    "BENCHMARK_DIMENSIONS",
    "OPENVE_RUBRICS",
    "REFERENCE_MATCH",
    "REFVIE_RUBRICS",
    "RUBRICS",
    "Judge",
    "JudgeCache",
    "JudgeClient",
    "JudgeError",
    "JudgeRequest",
    "JudgeScore",
    "MalformedJudgeAnswer",
    "ParsedAnswer",
    "Rubric",
    "apply_cap",
    "benchmark_rubric",
    "get_rubric",
    "parse_answer",
    "redact",
    "register_secret",
]
