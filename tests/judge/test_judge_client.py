"""The real judge client against the local fake OpenAI server: protocol, retries, timeouts, auth errors."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from kiwi_platform.judge import REFERENCE_MATCH, Judge, JudgeClient, JudgeError, parse_answer
from tests.fakes.openai_server import (
    Reply,
    answer,
    error,
    fenced,
    malformed,
    rate_limited,
    run_fake_openai,
    server_error,
    slow,
)
from tests.judge.json_rubrics import OPENVE

JUDGE_MODEL = "fake-vlm-judge"  # what the make_client fixture configures
MATCH = {"reference_match": 4}
OPEN = {"instruction_compliance": 5, "detail_preservation": 4, "temporal_consistency": 3}


def _decode(url: str) -> Image.Image:
    assert url.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_happy_path_speaks_the_openai_protocol(make_client: Callable[..., JudgeClient]) -> None:
    """One call: bearer key, model, system + user messages, text and JPEG data-URL parts, temperature 0."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, size=(720, 1280, 3), dtype=np.uint8)
    video = rng.integers(0, 255, size=(9, 64, 96, 3), dtype=np.uint8)
    with run_fake_openai(answer(OPEN, reason="clean edit")) as fake:
        judge = Judge(make_client(fake, max_side=256, video_frames=3))
        score = judge.score(
            "case-1",
            "ckpt-a",
            OPENVE,
            text="Instruction: make the sky pink",
            images=[("Source frame", frame), ("Edited video", video)],
        )
    assert score.scores == OPEN and score.reason == "clean edit"
    assert score.capped is False and score.cached is False
    assert fake.calls == 1
    req = fake.requests[0]
    assert req.authorization == f"Bearer {fake.api_key}"
    assert req.model == JUDGE_MODEL and req.body["temperature"] == 0
    assert [m["role"] for m in req.messages] == ["system", "user"]
    assert "strict" in req.system
    assert "Instruction: make the sky pink" in req.text and "Source frame:" in req.text
    assert '"instruction_compliance": <1-5>' in req.text
    # 1 image + 3 sampled video frames, each a real JPEG no larger than max_side.
    assert len(req.image_urls) == 4
    sizes = [_decode(u).size for u in req.image_urls]
    assert sizes[0] == (256, 144) and sizes[1:] == [(96, 64)] * 3
    assert all(_decode(u).format == "JPEG" for u in req.image_urls)


def test_images_from_files_are_sent_as_data_urls(make_client: Callable[..., JudgeClient], demo_dir, tmp_path) -> None:
    """A reference JPEG path, a PNG path and a real H.264 demo clip (sampled frames) all arrive as images."""
    png = tmp_path / "ref.png"
    Image.fromarray(np.full((40, 30, 4), 200, dtype=np.uint8)).save(png)
    ref = demo_dir / "video" / "reference" / "reco_replace_088301.jpg"
    clip = sorted((demo_dir / "video" / "source").glob("*.mp4"))[0]
    with run_fake_openai(answer(MATCH)) as fake:
        client = make_client(fake, max_side=128, video_frames=2)
        Judge(client).score("c", "qc", REFERENCE_MATCH, text="add a hat", images=[ref, png, clip])
    urls = fake.requests[0].image_urls
    assert len(urls) == 4
    assert max(_decode(urls[0]).size) == 128
    assert _decode(urls[1]).size == (30, 40)
    assert all(max(_decode(u).size) == 128 for u in urls[2:])


def test_fenced_prose_answer_is_accepted(make_client: Callable[..., JudgeClient]) -> None:
    """A chat-style answer with the JSON inside a ```json fence scores without a retry."""
    with run_fake_openai(fenced(OPEN, reason="fine")) as fake:
        score = Judge(make_client(fake)).score("c", "k", OPENVE, text="x")
    assert score.scores == OPEN and fake.calls == 1


def test_malformed_then_good_answer_is_retried_with_a_correction(make_client: Callable[..., JudgeClient]) -> None:
    """A prose answer is asked again, with the bad answer and the reason shown to the model; the retry scores."""
    with run_fake_openai([malformed(), answer({**OPEN, "temporal_consistency": 9}), answer(OPEN)]) as fake:
        score = Judge(make_client(fake, max_malformed_retries=2)).score("c", "k", OPENVE, text="x")
    assert score.scores == OPEN
    assert fake.calls == 3
    retry = fake.requests[1].messages
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert "invalid" in retry[3]["content"] and "scores" in retry[3]["content"]
    assert "outside 1..5" in fake.requests[2].messages[3]["content"]


def test_a_reply_that_is_not_a_chat_completion_is_asked_again(make_client: Callable[..., JudgeClient]) -> None:
    """A 200 whose body lacks choices[0].message.content (a proxy's HTML page, an empty answer) is retried."""
    with run_fake_openai([Reply(body=b"<html>gateway</html>"), Reply(content=""), answer(MATCH)]) as fake:
        score = Judge(make_client(fake)).score("c", "k", REFERENCE_MATCH, text="x")
    assert score.scores == MATCH and fake.calls == 3


def test_always_malformed_ends_in_a_clear_error(make_client: Callable[..., JudgeClient]) -> None:
    """A judge that never answers in the format gives a JudgeError (code malformed), after a bounded number of asks."""
    with run_fake_openai(malformed("I refuse to use JSON.")) as fake:
        with pytest.raises(JudgeError) as info:
            Judge(make_client(fake, max_malformed_retries=2)).score("case-9", "k", OPENVE, text="x")
    assert info.value.code == "malformed" and info.value.case_id == "case-9"
    assert "3 malformed answers" in str(info.value) and JUDGE_MODEL in str(info.value)
    assert fake.calls == 3


def test_out_of_range_scores_are_never_returned(make_client: Callable[..., JudgeClient]) -> None:
    """Scores of 0 or 7 count as malformed: the call fails rather than storing an impossible score."""
    with run_fake_openai(answer({"reference_match": 7})) as fake:
        with pytest.raises(JudgeError, match="outside 1..5"):
            Judge(make_client(fake, max_malformed_retries=1)).score("c", "k", REFERENCE_MATCH, text="x")
    assert fake.calls == 2


def test_429_with_retry_after_is_honoured(make_client: Callable[..., JudgeClient]) -> None:
    """After a 429 with Retry-After: 1 the client waits about a second, then the retry succeeds."""
    with run_fake_openai([rate_limited(1), answer(MATCH)]) as fake:
        client = make_client(fake, backoff_s=0.001)
        score = Judge(client).score("c", "k", REFERENCE_MATCH, text="x")
    assert score.scores == MATCH and fake.calls == 2
    gap = fake.requests[1].started - fake.requests[0].finished
    assert 0.9 <= gap < 3.0


def test_server_errors_are_retried_with_exponential_backoff(make_client: Callable[..., JudgeClient]) -> None:
    """500, 502, 503 are retried with doubling waits (0.1, 0.2, 0.4 s, each jittered 0.5x-1.5x)."""
    with run_fake_openai([server_error(500), server_error(502), server_error(503), answer(MATCH)]) as fake:
        score = Judge(make_client(fake, backoff_s=0.1, max_retries=3)).score("c", "k", REFERENCE_MATCH, text="x")
    assert score.scores == MATCH and fake.calls == 4
    gaps = [b.started - a.finished for a, b in zip(fake.requests, fake.requests[1:])]
    for gap, base in zip(gaps, (0.1, 0.2, 0.4)):
        assert 0.5 * base * 0.95 <= gap <= 1.5 * base + 0.3
    assert gaps[2] > 0.15  # above the largest un-doubled wait (1.5 x 0.1): the backoff grows


def test_persistent_server_errors_give_up_with_status(make_client: Callable[..., JudgeClient]) -> None:
    """When every attempt is a 503 the error says so, with the status and the attempt count."""
    with run_fake_openai(server_error(503)) as fake:
        with pytest.raises(JudgeError) as info:
            make_client(fake, max_retries=2).chat("sys", [{"type": "text", "text": "x"}], str)
    assert info.value.status == 503 and info.value.code == "server_error" and info.value.attempts == 3
    assert "gave up after 3 attempts" in str(info.value) and fake.calls == 3


def test_slow_reply_times_out_and_the_retry_succeeds(make_client: Callable[..., JudgeClient]) -> None:
    """A reply slower than timeout_s is abandoned and asked again; the fast second reply is used."""
    with run_fake_openai([slow(1.5, answer(MATCH)), answer({"reference_match": 2})]) as fake:
        t0 = time.monotonic()
        score = Judge(make_client(fake, timeout_s=0.3)).score("c", "k", REFERENCE_MATCH, text="x")
        elapsed = time.monotonic() - t0
    assert score.scores == {"reference_match": 2}
    assert fake.calls == 2 and elapsed < 1.4


def test_never_answering_in_time_ends_in_a_timeout_error(make_client: Callable[..., JudgeClient]) -> None:
    """An endpoint that is always too slow yields a JudgeError (code timeout) after max_retries + 1 tries."""
    with run_fake_openai(slow(1.0, answer(MATCH))) as fake:
        with pytest.raises(JudgeError) as info:
            Judge(make_client(fake, timeout_s=0.2, max_retries=2)).score("c", "k", REFERENCE_MATCH, text="x")
    assert info.value.code == "timeout" and "no answer within 0.2 s" in str(info.value)
    assert fake.calls == 3


@pytest.mark.parametrize(
    "status, code, reason, hint",
    [
        (400, "bad_request", "http_400", "refused the request"),
        (403, "auth", "http_403", "KIWI_JUDGE_API_KEY"),
        (404, "config", "http_404", "KIWI_JUDGE_BASE_URL"),
        (422, "bad_request", "http_422", "refused the request"),
    ],
)
def test_client_errors_are_not_retried(
    make_client: Callable[..., JudgeClient], status: int, code: str, reason: str, hint: str
) -> None:
    """400/403/404/422 fail at once with the status, a classified reason and what to check; the server's
    own error text is not repeated (it may echo the request)."""
    with run_fake_openai(error(status, f"nope-{status}", kind="invalid_request_error")) as fake:
        with pytest.raises(JudgeError) as info:
            Judge(make_client(fake)).score("c", "k", REFERENCE_MATCH, text="x")
    assert info.value.status == status and info.value.code == code and info.value.reason == reason
    assert f"HTTP {status} invalid_request_error" in str(info.value) and hint in str(info.value)
    assert f"nope-{status}" not in str(info.value)
    assert fake.calls == 1


def test_wrong_api_key_is_a_401_without_retry(make_client: Callable[..., JudgeClient]) -> None:
    """A bad key gives one request and a clear auth error naming KIWI_JUDGE_API_KEY; the key the server
    echoed back never appears in the message, and later calls fail at once without a request."""
    with run_fake_openai(answer(MATCH), api_key="right-key", echo_key=True) as fake:
        client = JudgeClient(fake.base_url, JUDGE_MODEL, "wrong-key-123", max_retries=3, backoff_s=0.01)
        with pytest.raises(JudgeError) as info:
            Judge(client).score("c", "k", REFERENCE_MATCH, text="x")
        with pytest.raises(JudgeError) as again:
            Judge(client).score("c2", "k", REFERENCE_MATCH, text="x")
    assert info.value.status == 401 and info.value.code == "auth" and info.value.fatal
    assert info.value.reason == "http_401" and info.value.attempts == 1
    assert "rejected the API key" in str(info.value) and "KIWI_JUDGE_API_KEY" in str(info.value)
    assert "wrong-key-123" not in str(info.value) and "Incorrect API key" not in str(info.value)
    assert "wrong-key-123" not in repr(client)
    assert again.value.reason == "http_401" and again.value.attempts == 0
    assert fake.calls == 1 and fake.requests[0].authorization == "Bearer wrong-key-123"


def test_unknown_model_is_reported_not_retried(make_client: Callable[..., JudgeClient]) -> None:
    """A model name the server does not serve (404 model_not_found) fails at once, naming the model and
    KIWI_JUDGE_MODEL."""
    with run_fake_openai(answer(MATCH), model="gpt-judge") as fake:
        with pytest.raises(JudgeError, match=f"model {JUDGE_MODEL} is not served there") as info:
            Judge(make_client(fake)).score("c", "k", REFERENCE_MATCH, text="x")
    assert info.value.reason == "model_not_found" and info.value.fatal and "KIWI_JUDGE_MODEL" in str(info.value)
    assert fake.calls == 1


def test_connection_refused_on_first_contact_is_not_retried(make_client: Callable[..., JudgeClient]) -> None:
    """A server that is not there at all (wrong URL, not started): one attempt, then a fatal config error
    naming KIWI_JUDGE_BASE_URL, no traceback, no retry storm."""
    with run_fake_openai() as fake:
        url = fake.base_url
    client = JudgeClient(url, JUDGE_MODEL, "k", max_retries=2, backoff_s=0.01, timeout_s=1)
    with pytest.raises(JudgeError) as info:
        client.chat("s", [{"type": "text", "text": "x"}], str)
    assert info.value.code == "config" and info.value.reason == "connection_failed" and info.value.attempts == 1
    assert "connection refused" in str(info.value) and "KIWI_JUDGE_BASE_URL" in str(info.value)


def test_a_connection_lost_after_first_contact_is_retried(make_client: Callable[..., JudgeClient]) -> None:
    """Once the endpoint has answered, a refused connection is an outage, not a wrong URL: it is retried
    with backoff and then reported (code connection), not treated as fatal."""
    with run_fake_openai(answer(MATCH)) as fake:
        client = make_client(fake, max_retries=2)
        client.chat("s", [{"type": "text", "text": "x"}], str)
    # another thread (its own session, so no kept-alive socket to the old server) calls after the shutdown
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.chat, "s", [{"type": "text", "text": "x"}], str)
        with pytest.raises(JudgeError) as info:
            future.result()
    assert info.value.code == "connection" and info.value.attempts == 3 and not info.value.fatal
    assert info.value.reason == "connection_failed"


def test_configuration_comes_from_env_and_missing_values_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    """KIWI_JUDGE_BASE_URL / _MODEL / _API_KEY configure the client; without a URL the error names the variable."""
    for var in ("KIWI_JUDGE_BASE_URL", "KIWI_JUDGE_MODEL", "KIWI_JUDGE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(JudgeError, match="KIWI_JUDGE_BASE_URL") as info:
        JudgeClient()
    assert info.value.code == "config"
    with run_fake_openai(answer(MATCH), api_key="env-key") as fake:
        monkeypatch.setenv("KIWI_JUDGE_BASE_URL", fake.base_url + "/")
        with pytest.raises(JudgeError, match="KIWI_JUDGE_MODEL"):
            JudgeClient()
        monkeypatch.setenv("KIWI_JUDGE_MODEL", "env-model")
        monkeypatch.setenv("KIWI_JUDGE_API_KEY", "env-key")
        client = JudgeClient(backoff_s=0.01)
        assert client.endpoint == fake.base_url + "/chat/completions"
        parsed = client.chat("s", [{"type": "text", "text": "x"}], lambda a: parse_answer(a, REFERENCE_MATCH))
    assert parsed.scores == MATCH
    assert fake.requests[0].model == "env-model" and fake.requests[0].authorization == "Bearer env-key"
    assert json.loads(json.dumps(fake.requests[0].body))["messages"][0]["role"] == "system"
