"""Sending one chat request to the judge endpoint, and stopping for good when the endpoint is unusable.

Why apart from the client: this is the part that holds shared, thread-crossing state (one
`requests.Session` per thread carrying the key, the `max_concurrency` slots, the first-contact gate,
the fatal error), while the client's retry loop is plain per-call logic. Until the endpoint has
answered once, requests go one at a time, so a bad key or URL costs one request; a fatal answer
(401/403/404, TLS failure, unreachable on first contact) stops the transport and every later post
fails at once without a request. Retrying what is not fatal is the caller's business
(`kiwi_platform.judge.client`).
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from kiwi_platform.judge.endpoint import ENV_BASE_URL, classify_status, connection_cause
from kiwi_platform.judge.errors import JudgeError
from kiwi_platform.judge.redact import redacting_logger, safe_url

log = redacting_logger(__name__)


class ChatTransport:
    """POSTs chat-completion bodies to one endpoint for one model, at most `max_concurrency` at a time."""

    def __init__(self, endpoint: str, model: str, api_key: str, *, timeout_s: float, max_concurrency: int) -> None:
        self.endpoint = endpoint
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._first_contact = threading.Lock()  # held for each request until the endpoint has answered once
        self._contacted = False
        self._fatal: JudgeError | None = None
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
            self._local.session = session
        return session

    def fail(
        self, message: str, *, code: str, status: int | None, attempts: int, reason: str | None = None
    ) -> JudgeError:
        """A `JudgeError` naming this model and endpoint (never the server's own error text)."""
        return JudgeError(
            f"judge {self.model} at {safe_url(self.endpoint)}: {message}",
            code=code,
            status=status,
            attempts=attempts,
            reason=reason,
        )

    @property
    def failed_for_good(self) -> JudgeError | None:
        """The fatal error that stopped this transport (bad key, URL or model), if any."""
        return self._fatal

    def _stop(self, error: JudgeError) -> JudgeError:
        if self._fatal is None:
            self._fatal = error
            log.error("judge stopped: %s", error.message)
        return error

    def post(self, body: dict[str, Any], attempts: int) -> requests.Response:
        """POST once and return a response that is not fatal; raises the fatal `JudgeError` otherwise.

        Until the endpoint has answered once, callers go through one at a time, so a bad key or URL
        costs one request; after that only `max_concurrency` bounds them.
        """
        gate = None
        if not self._contacted:
            self._first_contact.acquire()
            if self._contacted:  # another call made first contact while this one waited: go concurrent
                self._first_contact.release()
            else:
                gate = self._first_contact
        try:
            if (fatal := self._fatal) is not None:  # another call already found the endpoint unusable
                raise JudgeError(
                    fatal.message, code=fatal.code, status=fatal.status, attempts=attempts - 1, reason=fatal.reason
                )
            try:
                with self._slots:
                    resp = self._session().post(self.endpoint, json=body, timeout=self.timeout_s, allow_redirects=False)
            except requests.Timeout:
                raise
            except requests.exceptions.SSLError as exc:
                raise self._stop(
                    self.fail(
                        f"{connection_cause(exc)}; check {ENV_BASE_URL}",
                        code="config",
                        status=None,
                        attempts=attempts,
                        reason="tls_error",
                    )
                ) from None
            except requests.ConnectionError as exc:
                if self._contacted:
                    raise
                raise self._stop(
                    self.fail(
                        f"cannot reach the endpoint ({connection_cause(exc)}); check {ENV_BASE_URL} "
                        "and that the server is running",
                        code="config",
                        status=None,
                        attempts=attempts,
                        reason="connection_failed",
                    )
                ) from None
            if resp.status_code != 200:
                failure = classify_status(resp, self.model)
                if failure.fatal:
                    raise self._stop(
                        self.fail(
                            failure.message,
                            code=failure.code,
                            status=resp.status_code,
                            attempts=attempts,
                            reason=failure.reason,
                        )
                    )
            self._contacted = True
            return resp
        finally:
            if gate is not None:
                gate.release()
