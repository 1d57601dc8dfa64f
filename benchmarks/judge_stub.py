"""A minimal local OpenAI-compatible judge for the benchmarks (benchmarks never import from tests/).

It serves `POST /v1/chat/completions` on 127.0.0.1 (ephemeral port) with bearer auth, answers
every request with a fixed judge JSON chosen from the prompt text after a fixed delay (a stand-in
for model latency), and counts requests and the most in flight at once. Nothing else: no request
validation or error scripting (that is the test fake's job, tests/fakes/openai_server.py).

    with run_judge_stub(lambda text: {"score": 4}, delay_s=0.3) as stub:
        JudgeClient(stub.base_url, "bench-judge", stub.api_key) ...
        print(stub.calls, stub.max_in_flight)
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Prompt text of one request -> the `scores` object the judge answers with.
Scorer = Callable[[str], dict[str, Any]]


class JudgeStub:
    """A running stub: where to reach it, and what it has seen."""

    def __init__(self, scorer: Scorer, delay_s: float, api_key: str) -> None:
        self.scorer, self.delay_s, self.api_key = scorer, delay_s, api_key
        self.base_url = ""
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def reset(self) -> None:
        """Zero the counters (e.g. between a cold and a warm run)."""
        with self.lock:
            self.calls = 0
            self.max_in_flight = 0


def _prompt_text(body: dict) -> str:
    texts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else (content or [])
        texts += [p["text"] for p in parts if isinstance(p, dict) and p.get("type") == "text" and "text" in p]
    return "\n".join(texts)


def _handler(stub: JudgeStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"unknown path {self.path}", "type": "invalid_request_error"}})
                return
            if self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                self._send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_api_key"}})
                return
            with stub.lock:
                stub.calls += 1
                stub.in_flight += 1
                stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
            try:
                body = json.loads(raw or b"{}")
                content = json.dumps({"scores": stub.scorer(_prompt_text(body)), "reason": "benchmark stub"})
                time.sleep(stub.delay_s)
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", ""),
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                    },
                )
            finally:
                with stub.lock:
                    stub.in_flight -= 1

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client hung up: nothing to do
        pass


@contextlib.contextmanager
def run_judge_stub(scorer: Scorer, *, delay_s: float = 0.0, api_key: str = "bench-key") -> Iterator[JudgeStub]:
    """Serve the stub for the duration of the block; `stub.base_url` ends in /v1."""
    stub = JudgeStub(scorer, delay_s, api_key)
    server = _Server(("127.0.0.1", 0), _handler(stub))
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
