"""The chat-completions wire format the judge speaks: what a request body holds and where the answer is.

Why apart from the client: the shape of `POST /chat/completions` (messages with text and
`image_url` parts, the body's fields, `choices[0].message.content` on the way back, the follow-up
turn that shows the model its malformed answer) is pure data building, with no network or retry
state, so it reads and tests on its own and the client keeps only the calling.
"""

from __future__ import annotations

from typing import Any

import requests

from kiwi_platform.judge.errors import MalformedJudgeAnswer
from kiwi_platform.judge.media import MediaLike, to_data_urls


def image_url_parts(item: MediaLike, *, max_side: int, video_frames: int, quality: int) -> list[dict[str, Any]]:
    """`image_url` content parts for an image (one) or a video (sampled frames)."""
    urls = to_data_urls(item, max_side=max_side, video_frames=video_frames, quality=quality)
    return [{"type": "image_url", "image_url": {"url": url}} for url in urls]


def chat_body(
    model: str, messages: list[dict[str, Any]], extra_body: dict[str, Any], max_tokens: int | None
) -> dict[str, Any]:
    """The request body: deterministic sampling (temperature 0), `extra_body` on top, `max_tokens` if set."""
    body: dict[str, Any] = {"model": model, "messages": messages, "temperature": 0, **extra_body}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def ask_again(messages: list[dict[str, Any]], exc: MalformedJudgeAnswer) -> list[dict[str, Any]]:
    """The system and user turns, then the model's malformed answer and what was wrong with it."""
    return messages[:2] + [
        {"role": "assistant", "content": exc.answer},
        {
            "role": "user",
            "content": f"That answer was invalid: {exc.message}. Reply again, in exactly the required answer format.",
        },
    ]


def content_of(resp: requests.Response) -> str:
    """`choices[0].message.content` (joined if the server sends content parts), else malformed."""
    try:
        message = resp.json()["choices"][0]["message"]
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        kind = resp.headers.get("Content-Type", "no content type").split(";")[0]
        raise MalformedJudgeAnswer(f"response is not a chat completion ({kind}, {len(resp.content)} bytes)") from None
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        refused = isinstance(message, dict) and message.get("refusal")
        raise MalformedJudgeAnswer("empty answer" + (" (the model refused)" if refused else ""))
    return content
