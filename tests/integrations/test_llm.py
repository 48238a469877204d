"""The chat-completions client against the local stand-in of the API (a real HTTP server on an ephemeral port)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from integrations.llm import LlmClient, LlmError
from integrations.llm_standin import REQUESTS
from tests.conftest import LLM_KEY, RunningStandin

KEY = LLM_KEY
PASSAGES = "知识库段落：\n\n[kb:ukey-lost] 《证书与密钥》§UKey 丢失\nUKey 丢失时请立即挂失。之后补发。"
PROMPT = [
    {"role": "system", "content": "只依据段落回答。"},
    {"role": "user", "content": f"{PASSAGES}\n\n客户的问题：UKey 丢了怎么办"},
]


@pytest.fixture
async def standin(llm_standin: RunningStandin) -> tuple[str, web.Application]:
    return llm_standin.url, llm_standin.app


def client_for(url: str, **overrides: Any) -> LlmClient:
    return LlmClient(**{"base_url": url, "api_key": KEY, "model": "standin-echo", "timeout_seconds": 2, **overrides})


async def test_answer_and_what_was_sent(standin: tuple[str, web.Application]) -> None:
    url, app = standin
    answer = await client_for(url + "/").complete(PROMPT)  # a trailing slash on the base URL is fine
    assert answer == "UKey 丢失时请立即挂失。 [kb:ukey-lost]"
    [sent] = app[REQUESTS]
    assert sent["model"] == "standin-echo" and sent["messages"] == PROMPT and sent["stream"] is False
    assert sent["temperature"] <= 0.3 and sent["max_tokens"] > 0


async def test_a_wrong_key_is_an_error_that_does_not_show_the_key(
    standin: tuple[str, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = standin
    client = client_for(url, api_key="sk-wrong-key-abcdef")
    with pytest.raises(LlmError) as raised:
        await client.complete(PROMPT)
    assert raised.value.failure == "status" and raised.value.status == 401
    shown = f"{raised.value} {raised.value!r} {client!r}"
    assert "sk-wrong-key" not in shown and "sk-wrong-key" not in caplog.text


@pytest.mark.parametrize(
    ("model", "failure", "status"),
    [
        ("standin-500", "status", 500),
        ("standin-bad-json", "malformed", None),
        ("standin-no-choices", "malformed", None),
    ],
)
async def test_server_errors_and_malformed_replies(
    standin: tuple[str, web.Application], model: str, failure: str, status: int | None
) -> None:
    url, _ = standin
    with pytest.raises(LlmError) as raised:
        await client_for(url, model=model).complete(PROMPT)
    assert (raised.value.failure, raised.value.status) == (failure, status)


async def test_the_time_limit_covers_the_whole_call(standin: tuple[str, web.Application]) -> None:
    url, _ = standin
    started = time.monotonic()
    with pytest.raises(LlmError) as raised:
        await client_for(url, model="standin-slow", timeout_seconds=0.5).complete(PROMPT)
    assert raised.value.failure == "timeout"
    assert 0.4 < time.monotonic() - started < 1.5


async def test_nobody_listening(unused_tcp_port_factory: Callable[[], int]) -> None:
    with pytest.raises(LlmError) as raised:
        await client_for(f"http://127.0.0.1:{unused_tcp_port_factory()}").complete(PROMPT)
    assert raised.value.failure == "connection"


async def test_nothing_is_logged_with_the_prompt(
    standin: tuple[str, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url, _ = standin
    await client_for(url).complete(PROMPT)
    assert "UKey" not in caplog.text and KEY not in caplog.text
