"""A client of an OpenAI-compatible chat-completions API (DeepSeek, or any service that speaks the same API).

llm = LlmClient(base_url="https://api.deepseek.com", api_key=key, model="deepseek-chat", timeout_seconds=8)
text = await llm.complete([{"role": "system", "content": "..."}, {"role": "user", "content": "..."}])

One call is `POST {base_url}/chat/completions` with `Authorization: Bearer <key>`, under one overall time limit
(connecting, waiting and reading together). Every failure — time-out, refused connection, an HTTP error status, a
reply that is not the API's JSON — raises `LlmError`, whose message names what went wrong but never the key, the
prompt or the reply. `integrations/llm_standin.py` is a local stand-in of the API for tests and demos.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import aiohttp

Failure = Literal["timeout", "connection", "status", "malformed"]


class LlmError(Exception):
    """The model gave no usable answer. `failure` says why; `status` is the HTTP status for `status` failures."""

    def __init__(self, failure: Failure, status: int | None = None) -> None:
        self.failure = failure
        self.status = status
        super().__init__(f"LLM call failed: {failure}" + (f" (HTTP {status})" if status is not None else ""))


class LlmClient:
    """Immutable after construction; one instance serves every call. Each call opens its own HTTP session, so the
    client needs no closing (a model answer takes seconds; a connection set-up more is nothing next to it)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_seconds: float,
        temperature: float = 0.1,
        max_tokens: int = 600,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self.model = model
        self.timeout_seconds = timeout_seconds
        self._temperature = temperature
        self._max_tokens = max_tokens

    def __repr__(self) -> str:  # never the key
        return f"LlmClient(url={self._url!r}, model={self.model!r}, timeout_seconds={self.timeout_seconds})"

    async def complete(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The model's answer to the conversation (`[{"role": ..., "content": ...}, ...]`), stripped."""
        body = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
            "stream": False,
        }
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        try:
            async with asyncio.timeout(self.timeout_seconds):
                async with aiohttp.ClientSession() as http:
                    async with http.post(self._url, json=body, headers=headers) as resp:
                        if resp.status != 200:
                            raise LlmError("status", resp.status)
                        try:
                            reply = await resp.json(content_type=None)
                        except ValueError as exc:
                            raise LlmError("malformed") from exc
        except TimeoutError as exc:
            raise LlmError("timeout") from exc
        except aiohttp.ClientError as exc:
            raise LlmError("connection") from exc
        return _answer_of(reply)


def _answer_of(reply: Any) -> str:
    """`choices[0].message.content` of a chat-completions reply, or LlmError("malformed")."""
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LlmError("malformed") from exc
    if not isinstance(content, str) or not content.strip():
        raise LlmError("malformed")
    return content.strip()
