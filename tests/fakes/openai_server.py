"""A local fake of an OpenAI-compatible chat-completions server, scriptable per request.

Why a real HTTP server rather than a mocked client: the judge client's retry, timeout, auth and
concurrency behaviour only shows up over real sockets. This server speaks the same protocol as
OpenAI / vLLM (`POST /v1/chat/completions`, bearer auth, `{"error": {...}}` bodies, chat
completion JSON), validates the request shape (model, messages, text and `image_url` parts with
base64 JPEG/PNG data URLs) and records every request with its timing, plus the highest number of
requests in flight at once.

Scripting: `behaviour` is a `Reply` (every request), a list of replies (request i gets item i, the
last one repeats), or a function `FakeRequest -> Reply` (e.g. `score_table`, which answers with the
scores listed for the case id found in the prompt text).

    with run_fake_openai([rate_limited(1), answer({"x": 4})]) as fake:
        JudgeClient(fake.base_url, "judge", fake.api_key) ...
        assert fake.calls == 2

Careless servers and proxies echo the request in their error bodies; `echo_key=True` makes the
401 for a wrong key quote the key it was given, and `echoing_error` answers any status with the
request's Authorization header in the message, so tests can prove the key never gets stored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """What to answer: an assistant `content` with status 200, or an error status; `delay_s` before answering."""

    status: int = 200
    content: str | None = None
    body: Any = None  # replaces the whole response body (dict -> JSON, bytes/str as is)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class FakeRequest:
    """One received request, as parsed by the fake."""

    index: int
    model: str
    messages: list[dict]
    system: str
    texts: list[str]
    image_urls: list[str]
    authorization: str | None
    body: dict
    started: float
    finished: float | None = None
    status: int | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


Behaviour = Reply | Sequence[Reply] | Callable[[FakeRequest], Reply]


# -- reply helpers -------------------------------------------------------------------------------
def answer(scores: dict[str, Any], reason: str = "looks right", **kw: Any) -> Reply:
    """A well-formed judge answer: the bare JSON object."""
    return Reply(content=json.dumps({"scores": scores, "reason": reason}), **kw)


def fenced(scores: dict[str, Any], reason: str = "looks right", **kw: Any) -> Reply:
    """A judge answer in prose with the JSON inside a ```json fence, as chat models often write."""
    body = json.dumps({"scores": scores, "reason": reason}, indent=2)
    return Reply(
        content=f"Here is my evaluation of the edit.\n\n```json\n{body}\n```\n\nLet me know if you need more.", **kw
    )


def malformed(text: str = "The edit looks quite good overall, I would say around four out of five.") -> Reply:
    return Reply(content=text)


def error(
    status: int,
    message: str,
    *,
    kind: str = "server_error",
    headers: dict[str, str] | None = None,
    delay_s: float = 0.0,
) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": kind, "param": None, "code": None}},
        headers=headers or {},
        delay_s=delay_s,
    )


def rate_limited(retry_after: float | str = 1) -> Reply:
    return error(
        429, "Rate limit reached for requests", kind="rate_limit_exceeded", headers={"Retry-After": str(retry_after)}
    )


def server_error(status: int = 500) -> Reply:
    return error(status, "The server had an error while processing your request.")


def slow(delay_s: float, then: Reply | None = None) -> Reply:
    """`then` (default: a valid-looking single-score answer) after `delay_s` seconds."""
    return replace(then or answer({"reference_match": 3}), delay_s=delay_s)


def echoing_error(status: int, kind: str = "server_error") -> Callable[[FakeRequest], Reply]:
    """An error whose message quotes the request's Authorization header, as a careless proxy's debug page does."""

    def behave(req: FakeRequest) -> Reply:
        return error(status, f"upstream failed for request with Authorization: {req.authorization}", kind=kind)

    return behave


def score_table(
    table: dict[str, dict[str, Any]], default: Reply | None = None, reason: str = "scored from table"
) -> Callable[[FakeRequest], Reply]:
    """Answer with `table[case_id]` for the case id that appears in the request's text (longest match wins)."""
    keys = sorted(table, key=len, reverse=True)

    def behave(req: FakeRequest) -> Reply:
        text = req.text
        for key in keys:
            if key in text:
                return answer(table[key], reason=f"{reason}: {key}")
        return default or error(
            400, "fake: no case id from the score table found in the prompt", kind="invalid_request_error"
        )

    return behave


# -- server --------------------------------------------------------------------------------------
class _BadRequest(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _check_data_url(url: Any) -> None:
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise _BadRequest(400, f"image_url.url must be a base64 image data URL, got {str(url)[:40]!r}")
    try:
        raw = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest(400, "image_url data URL is not valid base64") from None
    if not (raw.startswith(b"\xff\xd8\xff") or raw.startswith(b"\x89PNG")):
        raise _BadRequest(400, "image_url data is not a JPEG or PNG image")


def _parse_messages(body: Any) -> tuple[str, list[dict], str, list[str], list[str]]:
    if not isinstance(body, dict):
        raise _BadRequest(400, "request body must be a JSON object")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise _BadRequest(400, "you must provide a model parameter")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest(400, "'messages' must be a non-empty array")
    system, texts, images = "", [], []
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("role") not in {"system", "user", "assistant", "developer"}:
            raise _BadRequest(400, f"invalid message: {str(msg)[:80]}")
        content = msg.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            parts = content
        else:
            raise _BadRequest(400, "message content must be a string or an array of parts")
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                if msg["role"] in {"system", "developer"}:
                    system += part["text"]
                elif msg["role"] == "user":
                    texts.append(part["text"])
            elif kind == "image_url" and isinstance(part.get("image_url"), dict) and msg["role"] == "user":
                _check_data_url(part["image_url"].get("url"))
                images.append(part["image_url"]["url"])
            else:
                raise _BadRequest(400, f"invalid content part: {str(part)[:80]}")
    return model, messages, system, texts, images


class FakeOpenAI:
    """Handle on a running fake: its URL and key, the recorded requests and concurrency counters."""

    def __init__(self, behaviour: Behaviour, api_key: str, model: str | None, echo_key: bool = False) -> None:
        self.behaviour = behaviour
        self.api_key = api_key
        self.model = model
        self.echo_key = echo_key
        self.requests: list[FakeRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.base_url = ""

    @property
    def calls(self) -> int:
        """Chat-completion requests received (authorized or not)."""
        with self.lock:
            return len(self.requests)

    def reset(self, behaviour: Behaviour | None = None) -> None:
        with self.lock:
            self.requests.clear()
            self.max_in_flight = 0
            if behaviour is not None:
                self.behaviour = behaviour

    def _choose(self, req: FakeRequest) -> Reply:
        b = self.behaviour
        if isinstance(b, Reply):
            return b
        if callable(b):
            return b(req)
        seq = list(b)
        return seq[min(req.index, len(seq) - 1)]

    def completion(self, model: str, content: str) -> dict:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": max(1, len(content) // 4),
                "total_tokens": 100 + max(1, len(content) // 4),
            },
        }


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # idle keep-alive connections end on their own

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = (
                body
                if isinstance(body, bytes)
                else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
            )
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout); nothing to answer

        def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
            self._send(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": fake.model or "fake-judge", "object": "model"}]})
            else:
                self._error(404, f"unknown path {self.path}")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"unknown path {self.path}")
                return
            auth = self.headers.get("Authorization")
            started = time.monotonic()
            with fake.lock:
                index = len(fake.requests)
                req = FakeRequest(
                    index=index,
                    model="",
                    messages=[],
                    system="",
                    texts=[],
                    image_urls=[],
                    authorization=auth,
                    body={},
                    started=started,
                )
                fake.requests.append(req)
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                self._serve(req, raw, auth)
            finally:
                with fake.lock:
                    fake.in_flight -= 1
                    req.finished = time.monotonic()

        def _serve(self, req: FakeRequest, raw: bytes, auth: str | None) -> None:
            if auth != f"Bearer {fake.api_key}":
                req.status = 401
                given = (auth or "").removeprefix("Bearer ")
                echo = f" Incorrect API key provided: {given}." if fake.echo_key else ""
                self._error(401, f"Incorrect API key provided.{echo}", kind="invalid_api_key")
                return
            try:
                body = json.loads(raw or b"null")
                req.body = body if isinstance(body, dict) else {}
                req.model, req.messages, req.system, req.texts, req.image_urls = _parse_messages(body)
                if fake.model is not None and req.model != fake.model:
                    raise _BadRequest(404, f"The model `{req.model}` does not exist", kind="model_not_found")
            except ValueError:
                req.status = 400
                self._error(400, "request body is not valid JSON")
                return
            except _BadRequest as exc:
                req.status = exc.status
                self._error(exc.status, exc.message, exc.kind)
                return
            reply = fake._choose(req)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            req.status = reply.status
            if reply.body is not None:
                self._send(reply.status, reply.body, reply.headers)
            elif reply.status == 200:
                self._send(200, fake.completion(req.model, reply.content or ""), reply.headers)
            else:
                self._send(
                    reply.status, {"error": {"message": "scripted error", "type": "server_error"}}, reply.headers
                )

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:  # client hung up mid-request: fine
        pass


@contextlib.contextmanager
def run_fake_openai(
    behaviour: Behaviour = answer({"reference_match": 4}),
    *,
    api_key: str = "test-key",
    model: str | None = None,
    echo_key: bool = False,
) -> Iterator[FakeOpenAI]:
    """Serve the fake on 127.0.0.1 (ephemeral port) for the duration of the block; `fake.base_url` ends in /v1.

    `model`: when set, requests naming another model get 404 `model_not_found`, as OpenAI answers.
    `echo_key`: the 401 for a wrong key quotes the key it received.
    """
    fake = FakeOpenAI(behaviour, api_key, model, echo_key)
    server = _Server(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
