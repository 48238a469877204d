"""The story end to end, played against a running server as its users would (`python run.py demo-scenario`).

1. The service platform registers a project (signed, as the platform signs), in implementation, with a new account
   manager and a new client contact, both with email addresses.
2. The room is created and staffed: the server adds a service specialist and a developer by load and skill.
3. The client opens the invitation email from the outbox, sets a password through the one-time link, signs in.
4. The client asks a routine question; the AI advisor answers with its source.
5. The client asks something the knowledge base cannot answer; the advisor hands it to the service specialist.
6. The client reports an error and files a ticket with `/ticket` in reply to it; the ticket bot confirms.
7. The service specialist resolves the ticket; the room hears of it.
8. The client mentions the account manager, who has never connected; after the mention delay the account manager
   gets exactly one email about it.

Everything goes through the server's public interfaces: the signed platform API, REST and Socket.IO; emails are read
from the outbox directory the server writes them to (the embedded default), so the scenario needs the server's data
dir and must run where the server runs.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from integrations import platform_client

ADVISOR = "云顾问助手"
TICKET_BOT = "工单助手"
ROUTINE_QUESTION = "UKey 密码输错好几次被锁了，怎么办？"
UNKNOWN_QUESTION = "你们能不能帮我们把整个 ERP 系统迁移到云上？"
ERROR_REPORT = "调用付款接口时返回错误码 E1002：签名验证失败，已经重试三次了。"
_INVITE_LINK = re.compile(r"#invite=([A-Za-z0-9_\-]+)")


class ScenarioFailed(Exception):
    """A step did not happen as the story says; the message says which and what was seen."""


@dataclass
class Outcome:
    """What the scenario saw, step by step, for the caller to print or check."""

    project: dict[str, Any] = field(default_factory=dict)
    staffing: dict[str, str] = field(default_factory=dict)  # role → real name
    routine_answer: str = ""
    answer_seconds: float = 0.0
    hand_off: str = ""
    ticket_number: int = 0
    ticket_resolved: str = ""
    mention_emails: list[EmailMessage] = field(default_factory=list)


@dataclass(frozen=True)
class ScenarioSettings:
    url: str  # the running server, e.g. http://127.0.0.1:8080
    platform_secret: str
    outbox: Path  # where the server writes emails (no SMTP configured)
    staff_username: str  # the staff member the server assigns as service specialist (demo data: ss.liu)
    staff_password: str
    mention_delay_seconds: float  # the server's mail_mention_delay_seconds
    step_timeout: float = 15.0


class _Socket:
    """One signed-in Socket.IO connection that records the messages it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self.sio.on("message", self._on_message)

    async def _on_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def connect(self, url: str, token: str) -> None:
        await self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await self.sio.call(event, payload, timeout=10)
        if not answer.get("ok"):
            raise ScenarioFailed(f"{event} was refused: {answer.get('error')}")
        return answer

    async def send(self, room_id: str, text: str, reply_to: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"room_id": room_id, "text": text, "client_msg_id": secrets.token_hex(8)}
        if reply_to:
            payload["reply_to"] = reply_to
        message: dict[str, Any] = (await self.call("send_message", payload))["message"]
        return message

    async def wait_for(self, what: str, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if match(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [f"{m['sender']['name']}: {m['text'][:60]}" for m in self.messages[-5:]]
                raise ScenarioFailed(f"no {what} within {timeout:.0f} s; last messages seen: {seen}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def close(self) -> None:
        await self.sio.disconnect()


def _from(bot_name: str, reply_to: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(message: dict[str, Any]) -> bool:
        sender = message["sender"]
        return bool(
            sender["kind"] == "bot"
            and sender["name"] == bot_name
            and (reply_to is None or message.get("reply_to") == reply_to)
        )

    return match


def read_outbox(outbox: Path) -> list[EmailMessage]:
    """Every email in the outbox, oldest first (the files' names sort in the order written)."""
    found: list[EmailMessage] = []
    if outbox.is_dir():
        for path in sorted(outbox.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
    return found


def _to(message: EmailMessage, address: str) -> bool:
    return address.lower() in str(message.get("To", "")).lower()


def _plain(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""


async def _wait_for_emails(outbox: Path, address: str, subject_has: str, timeout: float) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in read_outbox(outbox) if _to(m, address) and subject_has in str(m.get("Subject", ""))]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    answer: dict[str, Any] = await resp.json(content_type=None)
    if resp.status >= 400:
        raise ScenarioFailed(f"{resp.method} {resp.url.path} answered {resp.status}: {answer.get('error')}")
    return answer


async def play(settings: ScenarioSettings, say: Callable[[str], None] = print) -> Outcome:
    """Play the story against the server at `settings.url`; raises ScenarioFailed at the first step that fails."""
    outcome = Outcome()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
    manager = {"username": f"am.demo{stamp}", "name": "周子涵", "email": f"zihan.zhou.{stamp}@example-bank.cn"}
    contact = {"username": f"yq.demo{stamp}", "name": "顾晓婷", "email": f"gu.xiaoting.{stamp}@yunqi.example"}
    project = {
        "external_id": f"DEMO-{stamp}",
        "name": "银企直连",
        "client_org": "云栖精密仪器有限公司",
        "products": ["银企直连"],
        "stage": "implementation",
        "people": [
            {**manager, "role": "account_manager"},
            {**contact, "role": "client_contact"},
        ],
    }
    timeout = settings.step_timeout

    # 1–2. The platform registers the project; the room is created and staffed.
    status, answer = await platform_client.register_project(settings.url, project, settings.platform_secret)
    if status >= 400 or not answer.get("ok"):
        raise ScenarioFailed(f"the platform's registration was refused ({status}): {answer.get('error')}")
    outcome.project = answer["project"]
    room_id = outcome.project["room_id"]
    say(f"1. 平台登记项目 {project['external_id']}（{project['client_org']} · 银企直连，售中）")

    client = _Socket()
    async with aiohttp.ClientSession(base_url=settings.url) as http:
        # 3. The client's invitation: from the outbox, through the one-time link, to a session.
        invitations = await _wait_for_emails(settings.outbox, contact["email"], "设置你的密码", timeout)
        if not invitations:
            raise ScenarioFailed(f"no invitation email for {contact['email']} in {settings.outbox}")
        link = _INVITE_LINK.search(_plain(invitations[-1]))
        if link is None:
            raise ScenarioFailed("the invitation email holds no #invite= link")
        password = secrets.token_urlsafe(12)
        async with http.post("/api/invitations/accept", json={"token": link.group(1), "password": password}) as r:
            client_token = (await _json(r))["token"]
        say(f"2. 客户 {contact['name']} 收到邀请邮件，通过一次性链接设置密码并登录")

        try:
            await client.connect(settings.url, client_token)
            members = (await client.call("get_members", {"room_id": room_id}))["members"]
            outcome.staffing = {m["role"]: m["user"]["name"] for m in members if m["user"]["kind"] == "staff"}
            specialist = outcome.staffing.get("service_specialist")
            if specialist is None:
                raise ScenarioFailed(f"no service specialist was assigned; the room holds {outcome.staffing}")
            staffing = "，".join(f"{role} {name}" for role, name in sorted(outcome.staffing.items()))
            say(f"3. 项目房间已创建并自动配备人员：{staffing}")

            # 4. A routine question: a sourced answer from the advisor.
            started = time.monotonic()
            question = await client.send(room_id, ROUTINE_QUESTION)
            answer_message = await client.wait_for("answer from the advisor", _from(ADVISOR, question["id"]), timeout)
            outcome.answer_seconds = time.monotonic() - started
            outcome.routine_answer = answer_message["text"]
            if "来源" not in outcome.routine_answer:
                raise ScenarioFailed(f"the advisor's answer names no source: {outcome.routine_answer!r}")
            say(f"4. 客户提问「{ROUTINE_QUESTION}」，云顾问助手 {outcome.answer_seconds:.2f} 秒内给出带来源的回答")

            # 5. A question the knowledge base cannot answer: handed to the service specialist.
            question = await client.send(room_id, UNKNOWN_QUESTION)
            hand_off = await client.wait_for("hand-off from the advisor", _from(ADVISOR, question["id"]), timeout)
            outcome.hand_off = hand_off["text"]
            if f"@{specialist}" not in outcome.hand_off:
                raise ScenarioFailed(f"the advisor did not hand over to @{specialist}: {outcome.hand_off!r}")
            say(f"5. 知识库答不了的问题，云顾问助手转交服务专员 @{specialist}")

            # 6. An error report becomes a ticket.
            report = await client.send(room_id, ERROR_REPORT)
            await client.send(room_id, "/ticket 付款接口签名验证失败", reply_to=report["id"])
            filed = await client.wait_for(
                "ticket confirmation", lambda m: _from(TICKET_BOT)(m) and "已创建" in m["text"], timeout
            )
            number = re.search(r"#(\d+)", filed["text"])
            if number is None:
                raise ScenarioFailed(f"the ticket bot's answer names no ticket number: {filed['text']!r}")
            outcome.ticket_number = int(number.group(1))
            say(f"6. 客户报告错误并用 /ticket 提交：{filed['text'].splitlines()[0]}")

            # 7. The service specialist resolves the ticket; the room hears of it.
            specialist_id = next(m["user"]["id"] for m in members if m["role"] == "service_specialist")
            login = {"username": settings.staff_username, "password": settings.staff_password}
            async with http.post("/api/auth/login", json=login) as r:
                if r.status != 200:
                    raise ScenarioFailed(
                        f"step 7: signing in as {settings.staff_username} failed ({r.status}); "
                        "pass the specialist's credentials with --staff-username and --staff-password"
                    )
                signed_in = await _json(r)
            if signed_in["user"]["id"] != specialist_id:
                raise ScenarioFailed(
                    f"the server assigned {specialist} as service specialist, not {settings.staff_username}: "
                    "pass their username with --staff-username"
                )
            headers = {"Authorization": f"Bearer {signed_in['token']}"}
            async with http.patch(
                f"/api/tickets/{outcome.ticket_number}", json={"status": "resolved"}, headers=headers
            ) as r:
                await _json(r)
            resolved = await client.wait_for(
                "ticket status in the room",
                lambda m: _from(TICKET_BOT)(m) and f"#{outcome.ticket_number}" in m["text"] and "已解决" in m["text"],
                timeout,
            )
            outcome.ticket_resolved = resolved["text"]
            say(f"7. 服务专员 {specialist} 将工单设为已解决，房间收到：{outcome.ticket_resolved}")

            # 8. The account manager, never connected, is mentioned: one email after the delay.
            await client.send(room_id, f"@{manager['name']} 请帮忙确认一下上线时间。")
            wait = settings.mention_delay_seconds + timeout
            say(f"8. 客户 @提及 离线的客户经理 {manager['name']}，等待提醒邮件（最多 {wait:.0f} 秒）……")
            outcome.mention_emails = await _wait_for_emails(settings.outbox, manager["email"], "提到了你", wait)
            if not outcome.mention_emails:
                raise ScenarioFailed(f"no mention email for {manager['email']} within {wait:.0f} s")
            await asyncio.sleep(1.0)  # a second email would be a fault: look once more
            outcome.mention_emails = await _wait_for_emails(settings.outbox, manager["email"], "提到了你", 0)
            if len(outcome.mention_emails) != 1:
                raise ScenarioFailed(f"{len(outcome.mention_emails)} mention emails for one mention")
            say(f"   客户经理收到 1 封邮件：{outcome.mention_emails[0]['Subject']}")
        finally:
            await client.close()
    return outcome
