"""Judge faults end to end: a rejected key, a down or slow endpoint, plain http, and a key the server echoes.

The remote judge is the one thing faked, by the local fake OpenAI server speaking the real protocol;
the client, the evaluation, MLflow (sqlite) and Dagster (sqlite instance, the real
`benchmark_results` asset) all run for real under the test's KIWI_HOME, which is then searched
byte by byte for the key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from kiwi_platform.evaluation import Suite, build_synthetic_suite, judge_suite, merge_suites
from kiwi_platform.judge import Judge, JudgeClient, JudgeError, JudgeRequest, redact, register_secret
from kiwi_platform.judge.redact import RedactingFilter
from tests.fakes.openai_server import (
    FakeRequest,
    Reply,
    answer,
    echoing_error,
    run_fake_openai,
    server_error,
    slow,
)
from tests.judge.json_rubrics import OPENVE
from tests.judge.upstream_answers import by_instruction, upstream_answer

CANARY = "sk-canary-123456"
MODEL = "fake-vlm-judge"
SCORES = {"instruction_compliance": 4, "detail_preservation": 4, "temporal_consistency": 4}
SIZE = {"frames": 5, "height": 64, "width": 96}


def files_containing(root: Path, needle: str) -> list[str]:
    """Every file under `root` (sqlite databases, WAL files and artifacts included) whose bytes hold `needle`."""
    data = needle.encode()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and data in p.read_bytes())


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Suite:
    """Two OpenVE cases (5 frames at 64x96) whose ground-truth targets can stand in for edited outputs."""
    return build_synthetic_suite("openve", tmp_path_factory.mktemp("fault-suite"), n=2, demo_dir=demo_dir, **SIZE)


def targets(suite: Suite) -> dict[str, Path]:
    return {case.case_id: suite.path(case.tgt_video) for case in suite.cases}


def make_judge(fake, key: str | None = None, **kw) -> Judge:
    settings = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01, "max_concurrency": 4, **kw}
    return Judge(JudgeClient(fake.base_url, MODEL, fake.api_key if key is None else key, **settings))


# -- a rejected key -------------------------------------------------------------------------------
def test_rejected_key_costs_one_request_for_a_whole_batch(caplog: pytest.LogCaptureFixture) -> None:
    """A 401 with 8 cases and 4 workers: exactly one request reaches the server (no retry, no storm),
    every case reports the same fatal http_401, and neither the errors nor the logs hold the key the
    server echoed back."""
    caplog.set_level(logging.DEBUG)
    with run_fake_openai(answer(SCORES), api_key="the-right-key", echo_key=True) as fake:
        judge = make_judge(fake, key=CANARY)
        requests = [JudgeRequest(f"case-{i}", "ckpt", OPENVE, text=f"case {i}") for i in range(8)]
        results = judge.score_many(requests)
    assert fake.calls == 1 and fake.requests[0].status == 401
    assert all(isinstance(r, JudgeError) and r.fatal and r.reason == "http_401" for r in results)
    assert sorted(r.attempts for r in results) == [0] * 7 + [1]
    assert all(CANARY not in str(r) and "Incorrect API key" not in str(r) for r in results)
    assert "rejected the API key" in str(results[0]) and CANARY not in logged(caplog)


def test_first_contact_goes_alone_then_calls_run_concurrently() -> None:
    """The first request is sent on its own (so a bad key or URL costs one request); once the endpoint has
    answered, the batch runs at full max_concurrency."""
    with run_fake_openai(answer(SCORES, delay_s=0.15)) as fake:
        judge = make_judge(fake, max_concurrency=3)
        results = judge.score_many([JudgeRequest(f"case-{i}", "ckpt", OPENVE, text=f"case {i}") for i in range(4)])
    assert all(r.scores == SCORES for r in results) and fake.calls == 4
    first, *rest = sorted(fake.requests, key=lambda r: r.started)
    assert all(r.started >= first.finished for r in rest)
    assert fake.max_in_flight == 3


def test_rejected_key_fails_the_suite_with_one_line(suite: Suite) -> None:
    """judge_suite (what benchmark_results runs) raises one line naming the fix instead of returning an
    outcome with zero scores that would read as success."""
    with run_fake_openai(answer(SCORES), api_key="the-right-key", echo_key=True) as fake:
        with pytest.raises(JudgeError) as info:
            judge_suite(make_judge(fake, key=CANARY), suite, targets(suite), "ckpt", "settings")
    message = str(info.value)
    assert "\n" not in message and "rejected the API key" in message and "KIWI_JUDGE_API_KEY" in message
    assert CANARY not in message and info.value.code == "auth" and fake.calls == 1


# -- a failing or slow endpoint -------------------------------------------------------------------
def test_persistent_server_errors_fail_the_suite_after_bounded_retries(suite: Suite) -> None:
    """HTTP 500 on every attempt: each case is tried max_retries + 1 times with backoff, then, since no
    case got a score, the suite fails with one line counting the reasons."""
    with run_fake_openai(server_error(500)) as fake:
        with pytest.raises(JudgeError) as info:
            judge_suite(make_judge(fake, max_retries=2), suite, targets(suite), "ckpt", "settings")
    assert fake.calls == len(suite.cases) * 3
    assert info.value.reason == "all_cases_failed" and "\n" not in str(info.value)
    assert f"scored none of the {len(suite.cases)} cases (http_500 x{len(suite.cases)})" in str(info.value)


def test_persistent_timeouts_fail_the_suite_as_timeouts(suite: Suite) -> None:
    """An endpoint that never answers in time: bounded retries per case, then one line counting timeouts."""
    with run_fake_openai(slow(0.6, answer(SCORES))) as fake:
        judge = make_judge(fake, timeout_s=0.2, max_retries=1)
        with pytest.raises(JudgeError, match=rf"timeout x{len(suite.cases)}"):
            judge_suite(judge, suite, targets(suite), "ckpt", "settings")
    assert fake.calls == len(suite.cases) * 2


def test_some_cases_failing_is_counted_not_fatal(suite: Suite) -> None:
    """One case scored while the other gets 503 on every attempt: the outcome keeps the score and records
    the failure by its classified reason after bounded retries, without the server's text."""
    first, second = suite.cases
    assert first.prompt != second.prompt
    table = by_instruction({first.prompt: upstream_answer((4, 4, 4))}, default=server_error(503))
    with run_fake_openai(table, api_key=CANARY) as fake:
        outcome = judge_suite(make_judge(fake, max_retries=1), suite, targets(suite), "ckpt", "settings")
    assert set(outcome.scores) == {first.case_id} and outcome.error_counts == {"http_503": 1}
    assert outcome.errors[second.case_id].attempts == 2 and "server had an error" not in str(
        outcome.errors[second.case_id]
    )


# -- transport and configuration ------------------------------------------------------------------
def test_plain_http_to_another_host_is_refused_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The key over http to a non-loopback host is refused with one line naming the flag; the flag (or its
    environment variable) allows it with a warning; loopback http, https, and http without a key stay allowed."""
    monkeypatch.delenv("KIWI_JUDGE_ALLOW_INSECURE_HTTP", raising=False)
    with pytest.raises(JudgeError) as info:
        JudgeClient("http://judge.example.com/v1", MODEL, CANARY)
    assert info.value.reason == "insecure_http" and info.value.fatal
    assert "KIWI_JUDGE_ALLOW_INSECURE_HTTP" in str(info.value) and CANARY not in str(info.value)
    caplog.set_level(logging.WARNING)
    JudgeClient("http://judge.example.com/v1", MODEL, CANARY, allow_insecure_http=True)
    assert "plain http to judge.example.com" in logged(caplog) and CANARY not in logged(caplog)
    monkeypatch.setenv("KIWI_JUDGE_ALLOW_INSECURE_HTTP", "1")
    JudgeClient("http://10.0.0.5:8000/v1", MODEL, CANARY)
    monkeypatch.delenv("KIWI_JUDGE_ALLOW_INSECURE_HTTP")
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"):
        JudgeClient(url, MODEL, CANARY)
    JudgeClient("https://judge.example.com/v1", MODEL, CANARY)
    JudgeClient("http://judge.example.com/v1", MODEL, "")


def test_the_resource_reads_the_insecure_http_flag(tmp_path: Path) -> None:
    """JudgeResource refuses plain http to a remote host by default and allows it with
    KIWI_JUDGE_ALLOW_INSECURE_HTTP=1."""
    from kiwi_platform.resources.judge import JudgeResource

    env = {"KIWI_HOME": str(tmp_path), "KIWI_JUDGE_BASE_URL": "http://judge.lan/v1", "KIWI_JUDGE_MODEL": "m"}
    with pytest.raises(JudgeError, match="allow_insecure_http"):
        JudgeResource.from_env(env).model_copy(update={"api_key": CANARY}).client()
    allowed = JudgeResource.from_env({**env, "KIWI_JUDGE_ALLOW_INSECURE_HTTP": "1"})
    assert allowed.allow_insecure_http and allowed.model_copy(update={"api_key": CANARY}).client().model == "m"


@pytest.mark.parametrize(
    "url, key, reason",
    [
        ("localhost:8000/v1", "k", "bad_base_url"),
        ("ftp://judge.example.com/v1", "k", "bad_base_url"),
        ("https://judge.example.com/v1", "sk-two words", "bad_api_key"),
        ("https://judge.example.com/v1", "sk-abc\nsk-def", "bad_api_key"),
    ],
)
def test_unusable_url_or_key_is_refused_before_any_request(url: str, key: str, reason: str) -> None:
    """A base URL without an http(s) scheme, or a key with spaces or line breaks, is a one-line config
    error at construction that does not repeat the key."""
    with pytest.raises(JudgeError) as info:
        JudgeClient(url, MODEL, key)
    assert info.value.reason == reason and info.value.code == "config" and key not in str(info.value)


# -- redaction ------------------------------------------------------------------------------------
def test_redact_masks_the_key_and_key_shaped_text() -> None:
    """The registered key, bearer tokens, sk- keys (also half-masked ones), URL credentials and key query
    parameters are masked; ordinary text is left alone."""
    register_secret("custom-secret-42")
    text = (
        "key custom-secret-42; Authorization: Bearer abc.def; provided: sk-canar*****3456; "
        "url https://user:pa55@host/v1?api_key=zzz; plain words stay"
    )
    out = redact(text)
    for secret in ("custom-secret-42", "abc.def", "sk-canar", "pa55", "zzz"):
        assert secret not in out
    assert out.endswith("plain words stay") and "https://***@host/v1?api_key=***" in out


def test_redacting_filter_drops_tracebacks_that_repeat_the_key(caplog: pytest.LogCaptureFixture) -> None:
    """A log record with an exception whose text holds the key keeps only the redacted one-liner."""
    register_secret(CANARY)
    logger = logging.getLogger("tests.judge.redaction")
    logger.addFilter(RedactingFilter())
    caplog.set_level(logging.INFO)
    try:
        raise RuntimeError(f"header was Bearer {CANARY}")
    except RuntimeError:
        logger.exception("call with %s failed", CANARY)
    assert CANARY not in caplog.text and "RuntimeError" in caplog.text


# -- the key the server echoes, end to end through benchmark_results --------------------------------
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.build import init_checkpoint

    return Path(init_checkpoint("tiny", tmp_path_factory.mktemp("fault-ckpt") / "tiny", seed=0))


@pytest.fixture
def platform(kiwi_home: Path, suite: Suite, tiny_checkpoint: Path, demo_dir: Path) -> Iterator[dict]:
    """A KIWI_HOME with the benchmark suite in the data repo, a registered stage-3 model version in MLflow
    (sqlite) and its stage3_checkpoint materialization in a Dagster sqlite instance."""
    from kiwi_platform.lib import mlflow_tags
    from kiwi_platform.resources import MediaStore, MlflowTracking, SettingsResource

    data = kiwi_home / "data"
    merge_suites([suite], data / "benchmarks" / "suites" / "all", "all")
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{kiwi_home / 'mlflow.db'}", artifact_root=str(kiwi_home / "mlruns")
    )
    with tracking.start_run("stage3", tags={"kiwi.role": "stage"}) as run:
        pass
    client = tracking.client()
    client.create_registered_model(tracking.registered_model)
    version = client.create_model_version(
        tracking.registered_model,
        source=run.info.artifact_uri,
        run_id=run.info.run_id,
        tags={mlflow_tags.CHECKPOINT_DIR: str(tiny_checkpoint)},
    ).version
    (kiwi_home / "dagster").mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.local_temp(tempdir=str(kiwi_home / "dagster")) as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "stage3_checkpoint", metadata={"model_version": str(version), "checkpoint_dir": str(tiny_checkpoint)}
            )
        )
        yield {
            "home": kiwi_home,
            "instance": instance,
            "tracking": tracking,
            "resources": {
                "store": MediaStore(root=str(data)),
                "tracking": tracking,
                "settings": SettingsResource(home=str(kiwi_home), demo_dir=str(demo_dir)),
            },
        }


def materialize_benchmark_results(platform: dict, fake, key: str) -> dg.ExecuteInProcessResult:
    from assets.evaluation import benchmark_results
    from kiwi_platform.resources import JudgeResource

    judge = JudgeResource(
        base_url=fake.base_url,
        model=MODEL,
        api_key=key,
        max_retries=1,
        backoff_s=0.01,
        max_concurrency=2,
        cache_path=str(platform["home"] / "judge-cache.sqlite"),
    )
    return dg.materialize(
        [benchmark_results],
        instance=platform["instance"],
        resources={**platform["resources"], "judge": judge},
        run_config={"ops": {"benchmark_results": {"config": {"evaluate_champion": False}}}},
        raise_on_error=False,
    )


def test_rejected_key_fails_benchmark_results_and_leaves_no_trace_of_the_key(
    platform: dict, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    """The issue's scenario: a 401 whose body echoes the key. benchmark_results fails (it no longer exits
    0 with judged: True and zero scores) with one line after one request, and the key is in no file under
    KIWI_HOME (Dagster's sqlite event log and compute logs, MLflow's database, the evaluation folder),
    no log record and no console output; neither is the server's error text."""
    caplog.set_level(logging.DEBUG)
    with run_fake_openai(answer(SCORES), api_key="the-right-key", echo_key=True) as fake:
        result = materialize_benchmark_results(platform, fake, CANARY)
    assert not result.success and fake.calls == 1
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert "\n" not in message and "rejected the API key (HTTP 401" in message and "KIWI_JUDGE_API_KEY" in message
    home = platform["home"]
    assert list(home.rglob("results.json")) == []  # nothing recorded as if it were a result
    assert files_containing(home, CANARY) == [] and files_containing(home, "Incorrect API key") == []
    out, err = capfd.readouterr()
    assert CANARY not in logged(caplog) + out + err


def test_partial_judge_failure_is_recorded_and_redacted_everywhere(
    platform: dict, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    """One case answered by a 500 that echoes the Authorization header, one scored by a judge whose reason
    quotes the key: the run succeeds, the failed case stores only `http_500`, the counts appear in
    results.json and in the materialization's score text, and the key is in no file under KIWI_HOME
    (cases.csv, results.json, the MLflow artifacts and database, the judge cache, Dagster's storage)."""
    caplog.set_level(logging.DEBUG)
    good_case, bad_case = load_cases(platform)
    good, bad = good_case.case_id, bad_case.case_id
    assert good_case.prompt != bad_case.prompt

    def behave(req: FakeRequest) -> Reply:
        if bad_case.prompt in req.system:
            return echoing_error(500)(req)
        return upstream_answer((4, 4, 4), reason=f"fine; the caller used {req.authorization}")

    with run_fake_openai(behave, api_key=CANARY) as fake:
        result = materialize_benchmark_results(platform, fake, CANARY)
    assert result.success
    assert fake.calls == 1 + 2  # the good case once, the bad one max_retries + 1 times
    metadata = result.asset_materializations_for_node("benchmark_results")[0].metadata
    assert metadata["judged"].value is True
    assert "could not score 1 of 2 cases (http_500 x1)" in metadata["scores"].value
    saved = json.loads(Path(metadata["results"].value).read_text())
    assert saved["judge_errors"] == {bad: "http_500"} and saved["judge_error_counts"] == {"http_500": 1}
    rows = pd.read_csv(Path(metadata["results"].value).parent / "cases.csv").set_index("case_id")
    assert rows.loc[bad, "judge_error"] == "http_500" and rows.loc[good, "judge_score"] == 4.0
    assert "***" in rows.loc[good, "judge_reason"]
    [artifact] = (platform["home"] / "mlruns").rglob("results.json")  # what log_evaluation put on the model's run
    assert json.loads(artifact.read_text())["judge_error_counts"] == {"http_500": 1}
    home = platform["home"]
    assert files_containing(home, CANARY) == [] and files_containing(home, "upstream failed") == []
    out, err = capfd.readouterr()
    assert CANARY not in logged(caplog) + out + err


def load_cases(platform: dict) -> list:
    from kiwi_platform.evaluation import load_suite

    return load_suite(platform["home"] / "data" / "benchmarks" / "suites" / "all").cases
