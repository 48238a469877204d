"""The AI advisor (云顾问助手): answers routine questions from the knowledge base, with the source, or hands them on.

When it answers, in the rooms where it is on (`[bots.advisor]`; by default project rooms in every open stage, and
expert rooms):
- a message that mentions it (`@云顾问助手` or `@advisor`), from anyone;
- a client's message that reads as a question (？, 吗, 怎么, 如何, 多少, 哪, 是否, what, how, ...), unless it is
  addressed to someone else (`@刘婷 ...`), or a staff member has posted in the room since it was asked (checked
  when the advisor gets to it): a person's answer is never second-guessed;
- in an expert room whose session has an expert, only when mentioned: the expert answers the client. (A request's
  first message is posted just before the desk assigns an expert, so there the advisor waits a moment first.)
All of this is checked again just before it posts: if a person answered, or an expert came in, it says nothing.
Staff chatter without a mention, internal notes (it never reads them), and other bots' messages never reach it.

What it says: the best passage (`config/knowledge/`, jieba + BM25, traditional characters matched) trimmed to
`max_answer_chars`, then `来源：《文档标题》§小节标题 (passage-id)`. When the best two passages are both good and too
close to choose between (and no third is close), it answers with both: "可能与以下两点有关：", then each passage under
its title, trimmed to half of `max_answer_chars`, with its own source line. When no passage is clearly good enough
(the knowledge base's calibrated policy, `integrations/knowledge/decision.py`), or the question is about fees, prices
or rates, it does not guess: it says a colleague will follow up, @mentions the room's service specialist by real
name (or the account manager when there is none; in an expert room, the expert) and tells them privately. In an
expert room still waiting in the queue it only says the question is kept for the expert who takes the session.

With a model configured (`llm_*` settings, `integrations/llm.py`), the answer is written by the model from the
retrieved passages only, and checked before it is posted: it must cite one of them (`[kb:<id>]`), cite nothing else,
and state no figure (digits, percentages, amounts) and no fee or price that the passages do not have. Otherwise, and
on any model error or time-out, the retrieval answer is posted instead.

Config (`[bots.advisor].config`): `knowledge_dir` (default: config/knowledge/ of this checkout), `warm_up` (default
true: load the knowledge base at start, a second or two, so the first answer is fast; false: on the first question),
`max_answer_chars` (default 500).
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from chatserver.errors import NotFound
from chatserver.events import MessageSent
from integrations.knowledge import Decision, KnowledgeBase, KnowledgeBaseError, Passage, Reason, asks_about_pricing
from integrations.llm import LlmClient, LlmError

from .base import Bot, BotContext, IncomingMessage, Member, Person, RoomInfo

log = logging.getLogger("chatserver.bots.advisor")

DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parents[1] / "config" / "knowledge"
_CONFIG_KEYS = ("knowledge_dir", "warm_up", "max_answer_chars")
DESK_SETTLE_SECONDS = 0.3  # how long a question in an expert room without an expert waits for the desk to assign one

_MENTION = re.compile(r"[@＠]\s?(?:云顾问助手|雲顧問助手|advisor(?![\w.-]))", re.IGNORECASE)
_QUESTION = re.compile(
    r"[?？]|吗|嗎|怎么|怎麼|怎样|怎樣|如何|多少|多久|哪|是否|能否|可否|能不能|可不可以|是不是|有没有|有沒有|要不要"
    r"|什么|什麼|啥|为什么|為什麼|为何|為何|何时|何時|几[点天个时號号]|幾[點天個時號]|请问|請問|请教|請教"
    r"|^\s*(?:what|how|why|when|where|which|who|can|could|is|are|do|does|did|should|will|would|may)\b",
    re.IGNORECASE,
)
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")

QUEUED_ZH = "您的问题已记录，接入本次会话的专家会为您解答，请稍候。"
QUEUED_EN = "Your question is noted: the expert who takes this session will answer it. Please wait a moment."
PAIR_LEAD_ZH = "可能与以下两点有关："
PAIR_LEAD_EN = "This may concern either of the following:"


@dataclass(frozen=True, slots=True)
class AdvisorConfig:
    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    warm_up: bool = True
    max_answer_chars: int = 500


def advisor_config(raw: Mapping[str, Any]) -> AdvisorConfig:
    """`[bots.advisor].config` checked; ValueError naming the key."""
    unknown = sorted(set(raw) - set(_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown key {', '.join(unknown)} (there are: {', '.join(_CONFIG_KEYS)})")
    folder = raw.get("knowledge_dir", str(DEFAULT_KNOWLEDGE_DIR))
    warm_up = raw.get("warm_up", True)
    limit = raw.get("max_answer_chars", 500)
    if not isinstance(folder, str) or not folder:
        raise ValueError("knowledge_dir: must be a folder's path")
    if not isinstance(warm_up, bool):
        raise ValueError("warm_up: must be true or false")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 100 <= limit <= 4000:
        raise ValueError("max_answer_chars: must be a whole number from 100 to 4000")
    return AdvisorConfig(knowledge_dir=Path(folder), warm_up=warm_up, max_answer_chars=limit)


def reads_as_question(text: str) -> bool:
    return _QUESTION.search(unicodedata.normalize("NFKC", text)) is not None


def strip_mention(text: str) -> tuple[bool, str]:
    """(whether the advisor is mentioned, the text without the mention)."""
    stripped, count = _MENTION.subn(" ", text)
    return count > 0, " ".join(stripped.split())


def is_english(text: str) -> bool:
    return _HAN.search(text) is None and _LATIN.search(text) is not None


def source_line(passage: Passage) -> str:
    return f"来源：《{passage.document_title}》§{passage.title} ({passage.id})"


def retrieval_answer(passage: Passage, max_chars: int) -> str:
    """The passage (trimmed at a line or sentence end) and where it comes from."""
    return f"{_trim(passage.text, max_chars)}\n\n{source_line(passage)}"


def pair_answer(passages: Sequence[Passage], max_chars: int, *, english: bool = False) -> str:
    """Two passages, close and both good: a lead, then each under its title, trimmed to an equal share of
    `max_chars`, with its own source line."""
    share = max_chars // len(passages)
    parts = [PAIR_LEAD_EN if english else PAIR_LEAD_ZH]
    for number, passage in enumerate(passages, start=1):
        heading = f"{number}) {passage.title}" if english else f"{'一二三四'[number - 1]}、{passage.title}"
        parts.append(f"{heading}\n{_trim(passage.text, share)}\n{source_line(passage)}")
    return "\n\n".join(parts)


def _trim(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    line_end = cut.rfind("\n")
    sentence_end = max(cut.rfind(mark) for mark in "。！？；.!?;")
    if line_end >= max_chars // 2:
        cut = cut[:line_end]
    elif sentence_end >= max_chars // 2:
        cut = cut[: sentence_end + 1]
    cut = cut.rstrip()
    if cut.count("```") % 2:  # never leave a code block open
        cut += "\n```"
    return f"{cut}\n……（全文见来源）"


class AdvisorBot(Bot):
    name = "advisor"
    display_name = "云顾问助手"
    events = (MessageSent,)

    def __init__(self, llm: LlmClient | None = None) -> None:
        self._llm = llm
        self._loading: asyncio.Future[KnowledgeBase] | None = None  # loaded once, off the event loop

    def usage(self) -> str:
        return (
            "在项目和专家房间里回答对接中的常见问题并注明出处（@云顾问助手 提问，或客户直接提问）；"
            "答不准的问题转给服务专员。"
        )

    async def on_start(self, ctx: BotContext) -> None:
        config = advisor_config(ctx.config)
        if not config.knowledge_dir.is_dir():
            raise ValueError(f"knowledge_dir: {config.knowledge_dir} is not a folder")
        if config.warm_up:
            try:
                await self._knowledge_base(config.knowledge_dir)
            except KnowledgeBaseError as exc:
                raise ValueError(f"knowledge_dir: {exc}") from exc

    def _knowledge_base(self, folder: Path) -> asyncio.Future[KnowledgeBase]:
        loading = self._loading
        if loading is None or (loading.done() and (loading.cancelled() or loading.exception() is not None)):
            loading = asyncio.get_running_loop().run_in_executor(None, partial(KnowledgeBase.load, folder))
            self._loading = loading
        return asyncio.shield(loading)  # a job cut off by its time limit must not cancel the load for the next one

    # deciding whether to answer ----------------------------------------------------------------------
    def wants(self, message: IncomingMessage) -> bool:
        """A mention of the advisor, or a client's question; never an internal note."""
        if message.internal:
            return False
        mentioned, question = strip_mention(message.text)
        return mentioned or (message.sender.kind == "client" and reads_as_question(question))

    async def on_message(self, message: IncomingMessage, ctx: BotContext) -> None:
        room = ctx.room
        if room is None or room.read_only or not self.wants(message):
            return
        mentioned, question = strip_mention(message.text)
        members = await ctx.members()
        if room.kind == "expert" and not mentioned and not _experts(members):
            # A request's first message is posted before the desk assigns an expert: give the desk a moment.
            await asyncio.sleep(DESK_SETTLE_SECONDS)
            members = await ctx.members()
        if not mentioned and not await _still_open(message, question, room, members, ctx):
            return
        config = advisor_config(ctx.config)
        if not question:
            await ctx.reply(f"您好，我是{self.display_name}。{self.usage()}")
            return
        kb = await self._knowledge_base(config.knowledge_dir)
        decision = kb.answer(question)
        written = None
        if decision.answer is not None and self._llm is not None:
            written = await self._model_answer(question, decision, room)
        if not mentioned:  # again: a person may have answered, or an expert come in, while it was working
            members = await ctx.members()
            if not await _still_open(message, question, room, members, ctx):
                return
        if decision.answer is None:
            if room.kind == "project" and not mentioned and decision.reason in (Reason.EMPTY, Reason.NO_MATCH):
                return  # "？", "是吗？", "明天几点开会？": nothing for the knowledge base; the room's staff see it
            await self._hand_off(message, question, decision, room, members, _experts(members), ctx)
        else:
            await ctx.reply(written or _retrieval_reply(decision, question, config.max_answer_chars))

    # handing off -----------------------------------------------------------------------------------
    async def _hand_off(
        self,
        message: IncomingMessage,
        question: str,
        decision: Decision,
        room: RoomInfo,
        members: list[Member],
        experts: list[Person],
        ctx: BotContext,
    ) -> None:
        english = is_english(question)
        if room.kind == "expert" and not experts:  # waiting in the queue: the expert who takes it answers
            if not await self._said_since_last_expert(ctx, (QUEUED_ZH, QUEUED_EN)):
                await ctx.reply(QUEUED_EN if english else QUEUED_ZH)
            return
        followers, role = _followers(room, members, experts, message.sender)
        await ctx.reply(_hand_off_text(followers, role, english, pricing=decision.reason is Reason.PRICING))
        excerpt = question if len(question) <= 120 else question[:120] + "…"
        why = "涉及费用/价格/利率" if decision.reason is Reason.PRICING else "知识库中没有足够可靠的答案"
        for person in followers:
            try:
                await ctx.tell(
                    person.id,
                    f"{message.sender.name}（{message.sender.org}）在「{room.title}」的提问需要您跟进（{why}）：{excerpt}",
                )
            except NotFound:  # left the room or was disabled meanwhile; the @mention in the room still stands
                continue

    async def _said_since_last_expert(self, ctx: BotContext, texts: Sequence[str]) -> bool:
        """Whether the advisor already said one of these in the room, after any expert last spoke."""
        for m in reversed(await ctx.history(limit=50)):
            if m.sender.kind == "bot" and m.sender.name == self.display_name and m.text in texts:
                return True
            if m.sender.kind == "staff":
                return False
        return False

    # the model -------------------------------------------------------------------------------------
    async def _model_answer(self, question: str, decision: Decision, room: RoomInfo) -> str | None:
        """The model's answer from the retrieved passages, checked; None to answer from retrieval instead."""
        assert self._llm is not None
        passages = [hit.passage for hit in decision.hits]  # the best three: a pair's two are among them
        try:
            text = await self._llm.complete(model_prompt(question, passages))
        except LlmError as exc:
            extra = {"bot": self.name, "room_id": room.id, "failure": exc.failure, "status": exc.status}
            log.warning("advisor: the model failed; answering from retrieval", extra=extra)
            return None
        checked = checked_model_answer(text, passages)
        if checked is None:
            log.warning(
                "advisor: the model's answer failed its checks; answering from retrieval",
                extra={"bot": self.name, "room_id": room.id},
            )
        return checked


def _retrieval_reply(decision: Decision, question: str, max_chars: int) -> str:
    if len(decision.answers) > 1:
        return pair_answer(decision.answers, max_chars, english=is_english(question))
    return retrieval_answer(decision.answers[0], max_chars)


def _experts(members: list[Member]) -> list[Person]:
    return [m.person for m in members if m.role == "expert"]


async def _still_open(
    message: IncomingMessage, question: str, room: RoomInfo, members: list[Member], ctx: BotContext
) -> bool:
    """Whether a question the advisor was not asked by name is still for it: not addressed to someone else, no staff
    member has posted since, and (an expert room) no expert has taken the session."""
    if room.kind == "expert" and _experts(members):
        return False
    addressed = unicodedata.normalize("NFKC", question)  # a full-width ＠ addresses a person as well
    if any(f"@{m.person.name}" in addressed for m in members if m.person.kind != "bot"):
        return False
    return not any(m.sender.kind == "staff" for m in await ctx.history(after_seq=message.seq, limit=50))


_ROLE_NAMES = {
    "service_specialist": ("服务专员", "service specialist"),
    "account_manager": ("客户经理", "account manager"),
    "expert": ("专家", "expert"),
}


def _followers(room: RoomInfo, members: list[Member], experts: list[Person], asker: Person) -> tuple[list[Person], str]:
    """Who follows a question up: the room's service specialists, else its account managers (an expert room: its
    expert); never the asker themselves."""
    if room.kind == "expert":
        return [p for p in experts if p.id != asker.id], "expert"
    for role in ("service_specialist", "account_manager"):
        people = [m.person for m in members if m.role == role and m.person.kind == "staff" and m.person.id != asker.id]
        if people:
            return people, role
    return [], ""


def _hand_off_text(followers: list[Person], role: str, english: bool, *, pricing: bool) -> str:
    """Names follow-up people as `@真实姓名`, which is how the room (and the email notifier) recognises a mention."""
    zh_role, en_role = _ROLE_NAMES.get(role, ("同事", "colleague"))
    names = "、".join(f"@{p.name}" for p in followers)
    if english:
        lead = (
            "Fees, prices and rates are confirmed by the bank, not by me."
            if pricing
            else "I need a colleague to confirm this."
        )
        if not followers:
            return f"{lead} A colleague will follow up shortly."
        return f"{lead} I have notified the {en_role} {', '.join(f'@{p.name}' for p in followers)}, who will follow up."
    lead = "费用、价格和利率以银行的正式答复为准，我不能回答。" if pricing else "这个问题我需要请同事确认，"
    if not followers:
        return f"{lead}同事会尽快跟进。"
    return f"{lead}已通知{zh_role} {names} 跟进。"


# the model's prompt and the checks of its answer ---------------------------------------------------------------

SYSTEM_PROMPT = """你是云帆银行交易银行部的在线助手“云顾问助手”，在银行与企业客户的项目群里回答系统对接中的问题。
规则：
1. 只能依据用户消息中给出的知识库段落回答，不得使用段落以外的任何知识，不得猜测或补充。
2. 不得说出段落中没有的费用、价格、利率、金额、期限或任何数字。
3. 在依据某个段落的句子后用 [kb:段落id] 标注出处，id 只能是给出的段落的 id。
4. 如果这些段落回答不了问题，只回复“无法回答”四个字。
5. 用提问的语言回答（中文问题用简体中文），简洁准确，不超过 300 字，不寒暄。"""

_CITATION = re.compile(r"\s*\[kb:([a-z0-9][a-z0-9-]*)\]")
_FIGURE = re.compile(r"\d+(?:\.\d+)?\s*%?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_CHINESE_FIGURE = re.compile(
    r"(?:百分之|千分之|万分之)[零〇一二两三四五六七八九十百千万点]+"
    r"|[零〇一二两三四五六七八九十百千万亿点]+(?:元|块钱|块|角|美元|港元|欧元|万元|亿元|个百分点|厘)"
)


def model_prompt(question: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
    blocks = "\n\n".join(f"[kb:{p.id}] 《{p.document_title}》§{p.title}\n{p.text}" for p in passages)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"知识库段落：\n\n{blocks}\n\n客户的问题：{question}"},
    ]


def _figures(text: str) -> set[str]:
    text = _THOUSANDS.sub("", unicodedata.normalize("NFKC", text))
    found = {f.replace(" ", "") for f in _FIGURE.findall(text)}
    return found | set(_CHINESE_FIGURE.findall(text))


def checked_model_answer(text: str, passages: Sequence[Passage]) -> str | None:
    """The model's answer with its sources, or None when it does not hold to the passages: it must cite at least one
    of them and nothing else, and every figure and any talk of fees or prices must come from them."""
    given = {p.id: p for p in passages}
    cited = list(dict.fromkeys(_CITATION.findall(text)))
    if not cited or any(c not in given for c in cited):
        return None
    body = _CITATION.sub("", text).strip()
    if not body:
        return None
    source_text = "\n".join(f"{p.title}\n{p.text}" for p in passages)
    if not _figures(body) <= _figures(source_text):
        return None
    if asks_about_pricing(body) and not asks_about_pricing(source_text):
        return None
    return body + "\n\n" + "\n".join(source_line(given[c]) for c in cited)
