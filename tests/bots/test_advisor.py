"""The AI advisor end to end: the real server, real Socket.IO clients, the shipped knowledge base, and (where a model
is configured) the local stand-in of the chat-completions API."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from bots.advisor import checked_model_answer, pair_answer, reads_as_question, retrieval_answer
from chatserver.settings import SettingsError
from integrations.knowledge import Passage
from integrations.llm_standin import REQUESTS
from tests.conftest import ChatClient, RunningServer, RunningStandin, room_id_by_title

XINGHE = "星河制造"  # implementation; service specialist 刘婷
RUIFENG = "瑞丰物流"  # presales; no service specialist, account manager 王晓明
ADVISOR = "云顾问助手"

PIN_QUESTION = "UKey密码输错好几次被锁了怎么办？"
PIN_QUESTION_TRADITIONAL = "UKey密碼輸錯好幾次被鎖了怎麼辦？"
PIN_FIRST_SENTENCE = "UKey 的 PIN 连续输错 6 次会被锁定，锁定后无法登录开放平台，也无法自行解锁。"
PIN_SOURCE = "来源：《证书与密钥》§UKey PIN 码锁定或忘记 (ukey-pin-locked)"
UNKNOWN_QUESTION = "你们银行能给我们公司贷款吗？"
FEE_QUESTION = "跨行转账手续费怎么算？"
PAIR_QUESTION = "证书快过期了怎么续期？"  # the renewal procedure and the expiry error answer it alike
HAND_OFF_TO_LIU = "这个问题我需要请同事确认，已通知服务专员 @刘婷 跟进。"
WARM = {"bots": {"advisor": {"config": {"warm_up": True}}}}


async def send(client: ChatClient, room_id: str, text: str, **extra: Any) -> dict[str, Any]:
    ack = await client.call(
        "send_message", {"room_id": room_id, "text": text, "client_msg_id": f"c-{time.monotonic_ns()}", **extra}
    )
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


def advisor_reply_to(message: dict[str, Any]) -> Any:
    return lambda m: m["sender"]["name"] == ADVISOR and m["reply_to"] == message["id"]


def advisor_messages(client: ChatClient) -> list[dict[str, Any]]:
    return [m for m in client.events("message") if m["sender"]["name"] == ADVISOR]


async def ask(client: ChatClient, room_id: str, text: str, timeout: float = 10) -> tuple[dict[str, Any], str]:
    """Send a question and wait for the advisor's answer to it: (the question, the answer's text)."""
    question = await send(client, room_id, text)
    answer = await client.wait_for("message", advisor_reply_to(question), timeout=timeout)
    return question, str(answer["text"])


async def test_a_clients_question_gets_a_sourced_answer_within_a_second(server_factory: Any, clients: Any) -> None:
    server: RunningServer = await server_factory(**WARM)  # the knowledge base is loaded at start
    client = await clients(server, "xh.li")
    staff = await clients(server, "ss.liu")
    room_id = await room_id_by_title(client, XINGHE)

    latencies = []
    for text in (PIN_QUESTION, "我忘了UKey的PIN码，能找回吗"):
        started = time.monotonic()
        question, answer = await ask(client, room_id, text)
        latencies.append(time.monotonic() - started)
        assert answer.startswith(PIN_FIRST_SENTENCE) and answer.endswith(PIN_SOURCE)
        seen = await staff.wait_for("message", advisor_reply_to(question))  # everyone in the room sees it
        assert seen["sender"]["kind"] == "bot" and seen["internal"] is False
    assert max(latencies) < 1.0, latencies

    # Traditional characters find the same passage, and the answer is the same.
    _, traditional = await ask(client, room_id, PIN_QUESTION_TRADITIONAL)
    assert traditional.startswith(PIN_FIRST_SENTENCE) and traditional.endswith(PIN_SOURCE)

    # English questions are answered from the same knowledge base, with the source line in the same form.
    _, english = await ask(client, room_id, "What headers does every request need?")
    assert re.search(r"\n来源：《[^》]+》§[^\n]+ \(request-headers\)$", english), english


async def test_what_it_does_not_know_goes_to_the_service_specialist(server: RunningServer, clients: Any) -> None:
    client = await clients(server, "xh.li")
    specialist = await clients(server, "ss.liu")
    manager = await clients(server, "am.wang")
    room_id = await room_id_by_title(client, XINGHE)

    _, answer = await ask(client, room_id, UNKNOWN_QUESTION)
    assert answer == HAND_OFF_TO_LIU  # named as `@真实姓名`, which is how the email notifier finds offline people
    notice = await specialist.wait_for("notice", lambda n: n["room_id"] == room_id)
    assert notice["sender"]["name"] == ADVISOR
    assert "李娜" in notice["text"] and UNKNOWN_QUESTION in notice["text"]
    await asyncio.sleep(0.2)
    assert manager.events("notice") == [] and client.events("notice") == []

    # Fees, prices and rates: handed off, with no figure at all.
    _, fee_answer = await ask(client, room_id, FEE_QUESTION)
    assert "@刘婷" in fee_answer and not re.search(r"\d", fee_answer)
    fee_notice = await specialist.wait_for("notice", lambda n: FEE_QUESTION in n["text"])
    assert "费用" in fee_notice["text"]

    # In English, the hand-off is in English.
    _, english = await ask(client, room_id, "Can your bank lend our company money?")
    assert (
        english
        == "I need a colleague to confirm this. I have notified the service specialist @刘婷, who will follow up."
    )


async def test_two_close_passages_are_answered_together_each_with_its_source(
    server: RunningServer, clients: Any
) -> None:
    client = await clients(server, "xh.li")
    specialist = await clients(server, "ss.liu")
    room_id = await room_id_by_title(client, XINGHE)

    _, answer = await ask(client, room_id, PAIR_QUESTION)
    assert answer.startswith("可能与以下两点有关：\n\n一、")
    first, second = answer.removeprefix("可能与以下两点有关：\n\n").split("\n\n二、")
    second = "二、" + second
    sources = [
        re.fullmatch(r"来源：《[^》]+》§[^\n]+ \(([a-z0-9-]+)\)", part.splitlines()[-1]) for part in (first, second)
    ]
    assert [m and m.group(1) for m in sources] == ["cert-renewal", "e1004-cert-expired"]
    for part in (first, second):  # each passage within half of max_answer_chars (500)
        text = "\n".join(part.splitlines()[1:-1])
        assert len(text) <= 250 + len("\n……（全文见来源）")
    await asyncio.sleep(0.2)
    assert specialist.events("notice") == []  # answered: nobody is asked to follow up


async def test_without_a_service_specialist_the_account_manager_follows_up(server: RunningServer, clients: Any) -> None:
    client = await clients(server, "rf.zhou")  # 瑞丰物流, presales: no service specialist yet
    manager = await clients(server, "am.wang")
    room_id = await room_id_by_title(client, RUIFENG)

    _, answer = await ask(client, room_id, UNKNOWN_QUESTION)
    assert answer == "这个问题我需要请同事确认，已通知客户经理 @王晓明 跟进。"
    notice = await manager.wait_for("notice", lambda n: n["room_id"] == room_id)
    assert "周敏" in notice["text"]


async def test_a_disabled_specialist_is_passed_over_for_the_account_manager(
    server: RunningServer, clients: Any
) -> None:
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(client, XINGHE)
    liu = await server.services.store.get_user_by_username("ss.liu")
    assert liu is not None
    await server.services.store.update_user(liu.id, active=False)  # still a member; can act on nothing

    _, answer = await ask(client, room_id, UNKNOWN_QUESTION)
    assert answer == "这个问题我需要请同事确认，已通知客户经理 @王晓明 跟进。"


async def test_staff_chatter_is_left_alone_and_a_mention_is_answered(server: RunningServer, clients: Any) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    await send(staff, room_id, PIN_QUESTION)  # a staff member's question, not addressed to the advisor
    await send(client, room_id, f"@刘婷 {PIN_QUESTION}")  # a client's question addressed to someone else
    await send(client, room_id, f"＠刘婷 {PIN_QUESTION}")  # with a full-width ＠ too
    await send(client, room_id, "？？？")  # questions with nothing to look up, or nothing the documents cover:
    await send(client, room_id, "好的，明天几点开会？")  # no answer and no hand-off, staff are in the room anyway
    mention = await send(staff, room_id, f"@{ADVISOR} {PIN_QUESTION}")
    answer = await staff.wait_for("message", advisor_reply_to(mention), timeout=10)
    assert answer["text"].startswith(PIN_FIRST_SENTENCE) and answer["text"].endswith(PIN_SOURCE)
    # The advisor handles messages in order: by now it has passed over the first two.
    assert [m["id"] for m in advisor_messages(staff)] == [answer["id"]]

    # A mention with no question gets a short introduction.
    hello = await send(client, room_id, f"@{ADVISOR}")
    intro = await client.wait_for("message", advisor_reply_to(hello))
    assert intro["text"].startswith(f"您好，我是{ADVISOR}")


async def test_it_stays_silent_when_staff_answered_first(server: RunningServer, clients: Any) -> None:
    client = await clients(server, "xh.li")
    staff = await clients(server, "ss.liu")
    room_id = await room_id_by_title(client, XINGHE)

    # The knowledge base loads on this first question (warm_up is off in tests): a second or so, during which a
    # staff member answers. The advisor checks again before posting, and says nothing.
    await send(client, room_id, PIN_QUESTION)
    await send(staff, room_id, "李总，锁了的话要到开户网点解锁，我稍后把申请表发您。")
    # The next question, which nobody has answered, is answered; by then the first has been handled.
    _, answer = await ask(client, room_id, "E1005 是什么错误")
    assert "(e1005-cert-not-bound)" in answer
    assert len(advisor_messages(client)) == 1


async def test_internal_notes_are_never_used(server_factory: Any, clients: Any, llm_standin: RunningStandin) -> None:
    server = await server_factory(**llm_standin.settings())
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)
    other_room = await room_id_by_title(staff, RUIFENG)

    await send(staff, room_id, "内部：UKey 锁了可以走绿色通道，手续费全免", internal=True)
    await send(staff, room_id, f"@{ADVISOR} 绿色通道怎么走？", internal=True)  # never reaches the advisor
    await send(staff, other_room, "瑞丰的 UKey 下周寄出")
    _, answer = await ask(client, room_id, PIN_QUESTION)
    assert "绿色通道" not in answer and "手续费" not in answer
    [request] = llm_standin.app[REQUESTS]  # the one question the advisor worked on, and all the model was shown
    shown = str(request["messages"])
    assert "绿色通道" not in shown and "瑞丰" not in shown and "ukey-pin-locked" in shown
    assert not [m for m in staff.events("message") if m["sender"]["name"] == ADVISOR and m["internal"]]


async def test_with_a_model_the_answer_is_written_from_the_passages_with_its_source(
    server_factory: Any, clients: Any, llm_standin: RunningStandin
) -> None:
    server = await server_factory(**llm_standin.settings("standin-echo"))
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(client, XINGHE)

    _, answer = await ask(client, room_id, PIN_QUESTION)
    # The stand-in answers with the first sentence of the first passage, citing it; the citation becomes the source.
    assert answer == f"{PIN_FIRST_SENTENCE}\n\n{PIN_SOURCE}"
    [request] = llm_standin.app[REQUESTS]
    assert request["model"] == "standin-echo"
    system, user = request["messages"]
    assert system["role"] == "system" and "只能依据" in system["content"]
    assert user["content"].startswith("知识库段落：\n\n[kb:ukey-pin-locked]") and PIN_QUESTION in user["content"]

    # What the advisor does not know is handed off without asking the model.
    _, hand_off = await ask(client, room_id, UNKNOWN_QUESTION)
    assert hand_off == HAND_OFF_TO_LIU and len(llm_standin.app[REQUESTS]) == 1


@pytest.mark.parametrize(
    "model",
    [
        "standin-500",  # an error status
        "standin-bad-json",  # a reply that is not the API's
        "standin-slow",  # past llm_timeout_seconds
        "standin-figure",  # a fee the passages do not have
        "standin-no-cite",  # no source
    ],
)
async def test_when_the_model_fails_the_retrieval_answer_is_given(
    server_factory: Any, clients: Any, llm_standin: RunningStandin, model: str
) -> None:
    server = await server_factory(**llm_standin.settings(model, llm_timeout_seconds=0.5))
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(client, XINGHE)

    _, answer = await ask(client, room_id, PIN_QUESTION)
    assert answer.startswith(PIN_FIRST_SENTENCE) and answer.endswith(PIN_SOURCE)
    assert "0.5" not in answer and "300" not in answer
    assert len(llm_standin.app[REQUESTS]) == 1


async def test_an_expert_room_waiting_in_the_queue_is_left_to_the_queue(server: RunningServer, clients: Any) -> None:
    client = await clients(server, "rf.zhou")  # no expert is online: the request waits in line
    specialist = await clients(server, "ss.liu")
    ack = await client.call("request_expert", {"product": "司库", "text": "你们行长是谁？"})
    assert ack["ok"] and ack["session"]["status"] == "queued", ack
    room_id = ack["session"]["room_id"]

    first = await client.wait_for("message", lambda m: m["room_id"] == room_id and m["sender"]["kind"] != "bot")
    kept = await client.wait_for("message", advisor_reply_to(first), timeout=10)
    assert kept["text"] == "您的问题已记录，接入本次会话的专家会为您解答，请稍候。"
    # What the knowledge base answers, it answers while the client waits; it says "kept" only once.
    _, answer = await ask(client, room_id, "资金归集可以设置零余额吗？")
    assert "(cash-pooling)" in answer
    await send(client, room_id, "明天天气怎么样？")
    _, answer = await ask(client, room_id, "E1005 是什么错误")
    assert [m["text"] for m in advisor_messages(client)].count(kept["text"]) == 1
    assert specialist.events("notice") == []  # nobody else is told: the queue takes care of it

    # An expert takes the session: from then on the advisor speaks only when asked.
    expert = await clients(server, "se.lin")
    await client.wait_for("expert_session", lambda s: s["room_id"] == room_id and s["status"] == "active")
    await send(client, room_id, "资金归集可以设置零余额吗？")
    asked = await send(expert, room_id, f"@{ADVISOR} 资金池的归集规则怎么改")
    answer_to_expert = await client.wait_for("message", advisor_reply_to(asked), timeout=10)
    assert "(cash-pooling)" in answer_to_expert["text"]
    assert len(advisor_messages(client)) == 4  # kept, two answers while queued, the one asked for


async def test_a_bad_knowledge_dir_stops_start_up(server_factory: Any, tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match=r"bots\.advisor\.config: knowledge_dir: .* is not a folder"):
        await server_factory(bots={"advisor": {"config": {"knowledge_dir": str(tmp_path / "nowhere")}}})


async def test_unknown_advisor_config_stops_start_up(server_factory: Any) -> None:
    with pytest.raises(SettingsError, match=r"bots\.advisor\.config: unknown key knowledge_folder"):
        await server_factory(bots={"advisor": {"config": {"knowledge_folder": "config/knowledge"}}})


# the checks, without a server ----------------------------------------------------------------------------------

PASSAGE = Passage(
    id="e9001-system-busy",
    title="E9001 系统繁忙",
    document="error-codes.md",
    document_title="错误码",
    text="返回 E9001 时请在 1 秒、2 秒、4 秒后重试，最多 3 次；重试成功率可达 99.5%。",
)


@pytest.mark.parametrize(
    ("model_text", "kept"),
    [
        ("请在 1 秒、2 秒、4 秒后重试，最多 3 次 [kb:e9001-system-busy]", True),
        ("成功率 99.5% [kb:e9001-system-busy]", True),
        ("请在 1 秒后重试。[kb:e9001-system-busy][kb:e9001-system-busy]", True),
        ("请最多重试 5 次 [kb:e9001-system-busy]", False),  # a figure the passage does not have
        ("成功率 99.5 [kb:e9001-system-busy] 或 3% [kb:e9001-system-busy]", False),  # 3 is there, 3% is not
        ("重试一次收费两元 [kb:e9001-system-busy]", False),  # an amount in Chinese numerals, and a fee
        ("重试不收费 [kb:e9001-system-busy]", False),  # no figure, but talk of fees the passage does not have
        ("请稍后重试。", False),  # no source
        ("请稍后重试 [kb:e9001-system-busy][kb:made-up]", False),  # a source it was not given
        ("[kb:e9001-system-busy]", False),  # nothing but a source
    ],
)
def test_a_model_answer_must_hold_to_its_passages(model_text: str, kept: bool) -> None:
    checked = checked_model_answer(model_text, [PASSAGE])
    assert (checked is not None) == kept
    if checked is not None:
        assert "[kb:" not in checked and checked.endswith("\n\n来源：《错误码》§E9001 系统繁忙 (e9001-system-busy)")
        assert checked.count("来源：") == 1


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("测试环境什么时候可以开通？", True),
        ("证书过期了怎么办", True),
        ("這個要怎麼設定", True),
        ("E1005 是什么错误", True),
        ("How do I renew the certificate", True),
        ("好的，收到", False),
        ("我们下周一开始联调。", False),
        ("Thanks, got it.", False),
    ],
)
def test_what_reads_as_a_question(text: str, question: bool) -> None:
    assert reads_as_question(text) is question


def test_long_passages_are_trimmed_at_a_line_end() -> None:
    long = Passage("p", "标题", "d.md", "文档", "\n".join(f"第{n}行：" + "很长的内容。" * 8 for n in range(20)))
    answer = retrieval_answer(long, 200)
    body, source = answer.split("\n\n")
    assert len(body) <= 200 + len("\n……（全文见来源）") and body.endswith("。\n……（全文见来源）")
    assert source == "来源：《文档》§标题 (p)"


def test_a_pair_answer_gives_each_passage_half_the_room_and_its_own_source() -> None:
    long = Passage("p", "标题", "d.md", "文档", "\n".join(f"第{n}行：" + "很长的内容。" * 8 for n in range(20)))
    short = Passage("q", "另一个标题", "d.md", "文档", "短的内容。")
    answer = pair_answer([long, short], 300)
    lead, first, second = answer.split("\n\n")
    assert lead == "可能与以下两点有关："
    assert first.startswith("一、标题\n") and first.endswith("。\n……（全文见来源）\n来源：《文档》§标题 (p)")
    assert len(first) <= len("一、标题\n") + 150 + len("\n……（全文见来源）\n来源：《文档》§标题 (p)")
    assert second == "二、另一个标题\n短的内容。\n来源：《文档》§另一个标题 (q)"
    english = pair_answer([short, long], 300, english=True)
    assert english.startswith("This may concern either of the following:\n\n1) 另一个标题\n")
    assert "\n\n2) 标题\n" in english
