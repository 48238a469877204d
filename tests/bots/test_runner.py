"""The bot framework end to end: real server, real Socket.IO clients, test bots registered beside the built-in ones."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from bots.base import Bot, BotContext, Command, CommandCall, IncomingMessage
from chatserver.actions import projects
from chatserver.app import BOT_RUNNER, create_app
from chatserver.events import MessageSent
from chatserver.settings import SettingsError
from tests.conftest import ChatClient, RunningServer, make_settings, room_id_by_title

XINGHE = "星河制造"  # demo project room, stage implementation
RUIFENG = "瑞丰物流"  # demo project room, stage presales


class EchoBot(Bot):
    """Echoes every message: if bots' messages reached bots, it would answer itself forever."""

    name = "echo"
    display_name = "回声机器人"
    events = (MessageSent,)
    commands = (
        Command("shout", "大声说出来", args="文字", answer="room"),
        Command("secret", "只告诉员工", answer="caller", staff_only=True),
    )

    async def on_message(self, message: IncomingMessage, ctx: BotContext) -> None:
        seen = await ctx.state.get("seen", 0)
        await ctx.state.set("seen", seen + 1)
        await ctx.reply(f"回声：{message.text}")

    async def on_command(self, call: CommandCall, ctx: BotContext) -> str | None:
        if call.command.name == "shout":
            return f"{call.caller.name} 说：{call.args}！"
        return "员工专用的答案"


class PickyBot(Bot):
    """Wants only questions; its look at a message fails on one text."""

    name = "picky"
    display_name = "挑剔机器人"
    events = (MessageSent,)

    def wants(self, message: IncomingMessage) -> bool:
        if message.text == "炸了":
            raise ValueError(message.text)
        return message.text.endswith("？")

    async def on_message(self, message: IncomingMessage, ctx: BotContext) -> None:
        await ctx.state.set("seen", await ctx.state.get("seen", 0) + 1)
        await ctx.reply(f"收到问题：{message.text}")


class FailingBot(Bot):
    name = "failing"
    display_name = "出错机器人"
    events = (MessageSent,)

    async def on_message(self, message: IncomingMessage, ctx: BotContext) -> None:
        raise ValueError(message.text)  # the text must not reach the log through the error


class HangingBot(Bot):
    name = "hanging"
    display_name = "卡住机器人"
    events = (MessageSent,)
    commands = (Command("hang", "永远不回答"),)

    async def on_message(self, message: IncomingMessage, ctx: BotContext) -> None:
        await asyncio.sleep(3600)

    async def on_command(self, call: CommandCall, ctx: BotContext) -> str | None:
        await asyncio.sleep(3600)
        return None


async def send(client: ChatClient, room_id: str, text: str, **extra: Any) -> dict[str, Any]:
    ack = await client.call(
        "send_message", {"room_id": room_id, "text": text, "client_msg_id": f"c-{time.monotonic_ns()}", **extra}
    )
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


def from_bot(name: str) -> Any:
    return lambda m: m["sender"]["kind"] == "bot" and m["sender"]["name"] == name


async def test_help_answers_only_the_caller(server: RunningServer, clients: Any) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    await send(client, room_id, "/help")
    notice = await client.wait_for("notice", lambda n: n["room_id"] == room_id)
    assert notice["sender"]["name"] == "命令助手" and notice["sender"]["kind"] == "bot"
    assert "/help" in notice["text"] and "仅自己可见" in notice["text"]
    await staff.wait_for("message", lambda m: m["text"] == "/help")  # the command itself is an ordinary message
    await asyncio.sleep(0.3)
    assert staff.events("notice") == []  # the answer went to the caller only
    assert not any(m["sender"]["kind"] == "bot" for m in staff.events("message"))
    # The help bot answers without sitting in the member list (the AI advisor, which posts in rooms, is there).
    members = (await staff.call("get_members", {"room_id": room_id}))["members"]
    assert "命令助手" not in [m["user"]["name"] for m in members]
    assert sorted(m["user"]["name"] for m in members if m["user"]["kind"] == "bot") == ["云顾问助手", "工单助手"]


async def test_help_lists_what_this_user_may_use(server_factory: Any, clients: Any) -> None:
    server = await server_factory(extra_bots=[EchoBot()])
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    await send(staff, room_id, "/help")
    staff_help = (await staff.wait_for("notice"))["text"]
    await send(client, room_id, "/help")
    client_help = (await client.wait_for("notice"))["text"]
    assert "/shout 文字" in staff_help and "房间内所有人可见" in staff_help and "/secret" in staff_help
    assert "/shout" in client_help and "/secret" not in client_help

    # A staff-only command from a client is answered as an unknown one, and privately.
    await send(client, room_id, "/secret")
    unknown = await client.wait_for("notice", lambda n: "/secret" in n["text"])
    assert "没有 /secret 这个命令" in unknown["text"] and "/help" in unknown["text"]
    await send(staff, room_id, "/secret")
    assert (await staff.wait_for("notice", lambda n: n["text"] == "员工专用的答案"))["room_id"] == room_id


async def test_a_message_starting_with_a_path_is_a_message_not_a_command(server: RunningServer, clients: Any) -> None:
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(client, XINGHE)
    sent = await send(client, room_id, "/api/payments 返回 E2005 是什么意思？")
    staff = await clients(server, "am.wang")
    page = await staff.call("get_history", {"room_id": room_id})
    assert sent["id"] in [m["id"] for m in page["messages"]]
    await asyncio.sleep(0.3)
    assert not [n for n in client.events("notice") if "这个命令" in n["text"]]


async def test_unknown_command_gets_a_clear_private_answer(server: RunningServer, clients: Any) -> None:
    caller = await clients(server, "xh.sun")
    other = await clients(server, "ss.liu")
    room_id = await room_id_by_title(caller, XINGHE)

    await send(caller, room_id, "/nosuch 参数")
    notice = await caller.wait_for("notice")
    assert notice == {**notice, "room_id": room_id, "text": "没有 /nosuch 这个命令。输入 /help 查看本房间可用的命令。"}
    await asyncio.sleep(0.3)
    assert other.events("notice") == []


async def test_room_answers_are_seen_by_everyone(server_factory: Any, clients: Any) -> None:
    server = await server_factory(extra_bots=[EchoBot()])
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    command = await send(client, room_id, "/shout 你好")
    for person in (staff, client):
        answer = await person.wait_for("message", from_bot("回声机器人"))
        assert answer["text"] == "李娜 说：你好！" and answer["reply_to"] == command["id"]
    assert not [m for m in client.events("message") if m["text"].startswith("回声")]  # commands are not echoed


async def test_bot_messages_never_trigger_bots(server_factory: Any, clients: Any) -> None:
    server = await server_factory(extra_bots=[EchoBot()])
    staff = await clients(server, "am.wang")
    room_id = await room_id_by_title(staff, XINGHE)

    # The bot was made a member of the rooms it is on in, as a user of kind bot with its display name.
    members = (await staff.call("get_members", {"room_id": room_id}))["members"]
    assert sorted(m["user"]["name"] for m in members if m["user"]["kind"] == "bot") == [
        "云顾问助手",
        "回声机器人",
        "工单助手",
    ]

    await send(staff, room_id, "第一条")
    await staff.wait_for("message", lambda m: m["text"] == "回声：第一条")
    await asyncio.sleep(0.5)  # had the echo triggered the echo bot, there would be 回声：回声：第一条 by now
    bot_messages = [m for m in staff.events("message") if m["sender"]["kind"] == "bot"]
    assert [m["text"] for m in bot_messages] == ["回声：第一条"]
    assert await server.app[BOT_RUNNER]._bots["echo"].state.get("seen") == 1  # its state: one message seen


async def test_a_bot_gets_only_the_messages_it_wants(
    server_factory: Any, clients: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatserver.bots")
    server = await server_factory(extra_bots=[PickyBot(), EchoBot()])
    staff = await clients(server, "am.wang")
    room_id = await room_id_by_title(staff, XINGHE)

    for text in ("随便说说", "炸了", "几点开会？"):
        await send(staff, room_id, text)
    await staff.wait_for("message", lambda m: m["text"] == "收到问题：几点开会？")
    for text in ("随便说说", "炸了", "几点开会？"):  # the other bot gets every message, the failing look included
        await staff.wait_for("message", lambda m, text=text: m["text"] == f"回声：{text}")
    await asyncio.sleep(0.3)
    picky = [m["text"] for m in staff.events("message") if from_bot("挑剔机器人")(m)]
    assert picky == ["收到问题：几点开会？"]
    assert await server.app[BOT_RUNNER]._bots["picky"].state.get("seen") == 1
    [failed] = [r for r in caplog.records if r.getMessage() == "bot failed"]
    assert failed.__dict__["bot"] == "picky" and failed.__dict__["error"] == "ValueError"
    assert "炸了" not in f"{failed.getMessage()} {failed.__dict__}"


async def test_failing_and_hanging_bots_delay_nothing_and_are_logged(
    server_factory: Any, clients: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatserver.bots")
    server = await server_factory(extra_bots=[HangingBot(), FailingBot(), EchoBot()], bot_timeout_seconds=0.5)
    sender = await clients(server, "am.wang")
    reader = await clients(server, "xh.li")
    room_id = await room_id_by_title(sender, XINGHE)

    started = time.monotonic()
    for n in range(3):
        await send(sender, room_id, f"机密内容{n}")
    for n in range(3):
        await reader.wait_for("message", lambda m, n=n: m["text"] == f"机密内容{n}", timeout=1)
    assert time.monotonic() - started < 1  # acked and delivered while the hanging bot still hangs
    # The other bots go on working: the echo bot answers every message.
    for n in range(3):
        await reader.wait_for("message", lambda m, n=n: m["text"] == f"回声：机密内容{n}", timeout=1)

    # A command for the hanging bot is cut off at the time limit, and logged.
    await send(sender, room_id, "/hang")

    def records(msg: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == msg]

    await asyncio.sleep(4 * 0.5 + 0.5)  # the hanging bot's four jobs (3 messages, 1 command) run one after another
    timed_out = records("bot timed out")
    assert len(timed_out) == 4 and {r.__dict__["bot"] for r in timed_out} == {"hanging"}
    assert {r.__dict__["event_type"] for r in timed_out} == {"MessageSent"}
    assert all(r.__dict__["room_id"] == room_id for r in timed_out)
    failed = records("bot failed")
    assert len(failed) == 3 and {r.__dict__["bot"] for r in failed} == {"failing"}
    assert all(r.__dict__["error"] == "ValueError" and r.exc_info is None for r in failed)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "机密内容" not in logged  # no message text in the logs

    # Delivery is still fine afterwards.
    await send(sender, room_id, "之后")
    await reader.wait_for("message", lambda m: m["text"] == "之后", timeout=1)


async def test_time_limit_is_the_setting(server_factory: Any, clients: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chatserver.bots")
    server = await server_factory(extra_bots=[HangingBot()], bot_timeout_seconds=1.5)
    sender = await clients(server, "am.wang")
    room_id = await room_id_by_title(sender, XINGHE)

    await send(sender, room_id, "/hang")
    await asyncio.sleep(1.0)
    assert not [r for r in caplog.records if r.getMessage() == "bot timed out"]  # not yet
    await asyncio.sleep(1.5)
    [record] = [r for r in caplog.records if r.getMessage() == "bot timed out"]
    assert record.__dict__["seconds"] == 1.5


async def test_bots_on_and_off_by_room_kind_and_stage(server_factory: Any, clients: Any) -> None:
    on_for = {"echo": {"room_kinds": ["project"], "stages": ["implementation"]}}
    server = await server_factory(extra_bots=[EchoBot()], bots=on_for)
    staff = await clients(server, "am.wang")
    ruifeng_client = await clients(server, "rf.zhou")
    xinghe = await room_id_by_title(staff, XINGHE)
    ruifeng = await room_id_by_title(staff, RUIFENG)

    # On in the implementation-stage project room, off in the presales one (not even a member there).
    await send(staff, xinghe, "实施阶段")
    await staff.wait_for("message", lambda m: m["text"] == "回声：实施阶段")
    await send(staff, ruifeng, "售前阶段")
    await send(staff, ruifeng, "/shout 售前")
    notice = await staff.wait_for("notice", lambda n: n["room_id"] == ruifeng)
    assert "没有 /shout 这个命令" in notice["text"]  # the help bot is on everywhere; echo's command is not
    members = (await staff.call("get_members", {"room_id": ruifeng}))["members"]
    assert "回声机器人" not in [m["user"]["name"] for m in members]

    # The project moves to implementation: the bot joins the room and answers there from then on.
    await projects.change_stage(server.services, "SMP-2026-0023", "implementation", delivery_id="bots-stage-1")
    notice = await staff.wait_for("message", lambda m: m["room_id"] == ruifeng and "阶段变更" in m["text"])
    assert notice["sender"]["kind"] == "bot"  # a system notice, sent as a bot user: it triggers no bot
    for _ in range(50):
        members = (await staff.call("get_members", {"room_id": ruifeng}))["members"]
        if any(m["user"]["name"] == "回声机器人" for m in members):
            break
        await asyncio.sleep(0.05)
    await send(ruifeng_client, ruifeng, "实施开始")
    await staff.wait_for("message", lambda m: m["text"] == "回声：实施开始")
    # ...and stops answering when the stage moves past the ones it is on for.
    await projects.change_stage(server.services, "SMP-2026-0023", "aftersales", delivery_id="bots-stage-2")
    await asyncio.sleep(0.3)
    await send(ruifeng_client, ruifeng, "售后问题")
    await asyncio.sleep(0.5)
    assert not [m for m in staff.events("message") if m["text"] == "回声：售后问题"]
    assert not [m for m in staff.events("message") if m["text"] in {"回声：售前阶段", f"回声：{notice['text']}"}]

    # Expert rooms are a room kind it is off for.
    session = await ruifeng_client.call("request_expert", {"product": "司库", "text": "想咨询司库的预算管控"})
    assert session["ok"], session
    expert_room = session["session"]["room_id"]
    await send(ruifeng_client, expert_room, "专家房间")
    await asyncio.sleep(0.5)
    assert not [m for m in ruifeng_client.events("message") if m["text"] == "回声：专家房间"]


async def test_internal_notes_stay_internal(server_factory: Any, clients: Any) -> None:
    server = await server_factory(extra_bots=[EchoBot()])
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    await send(staff, room_id, "内部备注", internal=True)  # the echo bot does not read internal notes
    await send(staff, room_id, "/shout 内部", internal=True)  # a room answer in an internal thread stays internal
    answer = await staff.wait_for("message", from_bot("回声机器人"))
    assert answer["internal"] is True and answer["text"] == "王晓明 说：内部！"
    await asyncio.sleep(0.3)
    assert not [m for m in staff.events("message") if m["text"] == "回声：内部备注"]
    assert not [m for m in client.events("message") if m["sender"]["kind"] == "bot"]


class ReaderBot(Bot):
    """Reads back through its context: who is in the room, the quoted message, the room's recent history."""

    name = "reader"
    display_name = "读取机器人"
    commands = (Command("peek", "看看", answer="caller"),)

    async def on_command(self, call: CommandCall, ctx: BotContext) -> str | None:
        roles = sorted(f"{m.person.name}:{m.role}" for m in await ctx.members() if m.person.kind != "bot")
        quoted = await ctx.message(call.message.reply_to) if call.message.reply_to else None
        history = [m.text for m in await ctx.history(limit=5)]
        return f"{'|'.join(roles)}\n引用:{quoted.text if quoted else '-'}\n历史:{'|'.join(history)}"


async def test_context_reads_members_quoted_message_and_history_but_no_internal_note(
    server_factory: Any, clients: Any
) -> None:
    server = await server_factory(extra_bots=[ReaderBot()])
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    note = await send(staff, room_id, "内部：报价底线", internal=True)
    question = await send(client, room_id, "证书什么时候到期？")
    await send(client, room_id, "/peek", reply_to=question["id"])
    answer = (await client.wait_for("notice", lambda n: "引用" in n["text"]))["text"]
    roles, quoted, history = answer.split("\n")
    assert roles.split("|") == [
        "刘婷:service_specialist",
        "孙浩:client_contact",
        "张伟:developer",
        "李娜:client_contact",
        "王晓明:account_manager",
        "陈思远:solution_expert",
    ]
    assert quoted == "引用:证书什么时候到期？"
    assert "证书什么时候到期？" in history and "报价底线" not in history

    # A staff member quoting the internal note in a public message: the public reply loses the link, so the
    # bot cannot be led to read the note out.
    await send(staff, room_id, "/peek", reply_to=note["id"])
    answer = (await staff.wait_for("notice", lambda n: "引用" in n["text"]))["text"]
    assert "引用:-" in answer and "报价底线" not in answer


async def test_bot_state_is_kept_in_the_store_across_restarts(server_factory: Any, clients: Any) -> None:
    server = await server_factory(extra_bots=[EchoBot()])
    staff = await clients(server, "am.wang")
    room_id = await room_id_by_title(staff, XINGHE)
    await send(staff, room_id, "一")
    await staff.wait_for("message", lambda m: m["text"] == "回声：一")
    assert await server.services.store.get_bot_value("echo", "seen") == 1
    state = server.app[BOT_RUNNER]._bots["echo"].state
    assert await state.add("once", 1) and not await state.add("once", 2)
    assert await state.get("once") == 1


def test_settings_name_only_bots_there_are(tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match="no bot named advisr"):
        create_app(make_settings(tmp_path, bots={"advisr": {}}))
    with pytest.raises(SettingsError, match="room_kinds"):
        make_settings(tmp_path, bots={"help": {"room_kinds": ["lobby"]}})
    with pytest.raises(SettingsError, match="stages"):
        make_settings(tmp_path, bots={"help": {"stages": ["someday"]}})
    with pytest.raises(SettingsError, match="not a bot name"):
        make_settings(tmp_path, bots={"System Bot": {}})
    with pytest.raises(SettingsError, match="bot_timeout_seconds"):
        make_settings(tmp_path, bot_timeout_seconds=0)
    settings = make_settings(tmp_path, bots={"help": {"enabled": False, "config": {"greeting": "你好"}}})
    assert settings.bots["help"].enabled is False and settings.bots["help"].config == {"greeting": "你好"}
