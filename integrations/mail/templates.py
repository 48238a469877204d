"""What the emails say: subject, plain text and HTML for each kind of email.

Every name, title and text interpolated into the HTML part goes through `html.escape` (attributes too), and new
lines in a message become `<br>` only after escaping. Times are shown in 北京时间 (UTC+8, no daylight saving).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import escape

BEIJING = timezone(timedelta(hours=8), "北京时间")
_EXCERPT_CHARS = 500
_FOOTER = "这是云顾问自动发送的邮件，请勿直接回复。"


@dataclass(frozen=True, slots=True)
class MentionItem:
    """One message that mentioned the recipient, as the digest shows it."""

    room_title: str
    link: str
    sender_name: str
    sender_org: str
    sender_external: bool
    text: str
    created_at: datetime
    internal: bool = False  # an internal note (only staff are ever emailed about one)
    quoted_text: str | None = None  # the message it replies to, if the recipient may read it
    quoted_sender: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def beijing_time(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") + "（北京时间）"


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def _who(item: MentionItem) -> str:
    return f"{item.sender_name}（{item.sender_org}{' · 外部' if item.sender_external else ''}）"


def _html_text(text: str) -> str:
    return "<br>".join(escape(line) for line in text.splitlines()) or "&nbsp;"


def _page(body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;font-size:14px;color:#1f2937;line-height:1.6">'
        f'{body}<p style="color:#6b7280;font-size:12px">{escape(_FOOTER)}</p></body></html>'
    )


def mention_digest(to_name: str, items: list[MentionItem]) -> Rendered:
    """One email listing the messages that mentioned `to_name` while they were away."""
    if len(items) == 1:
        subject = f"【云顾问】{items[0].sender_name} 在「{items[0].room_title}」中提到了你"
    else:
        subject = f"【云顾问】有 {len(items)} 条消息提到了你"
    intro = f"{to_name}，你好：\n\n你不在线时，有 {len(items)} 条消息提到了你："
    text_parts = [intro]
    html_parts = [f"<p>{escape(to_name)}，你好：</p><p>你不在线时，有 {len(items)} 条消息提到了你：</p>"]
    for item in items:
        body = _excerpt(item.text)
        quoted = "\n".join(f"    {line}" for line in body.splitlines())
        note = "  【内部备注，客户不可见】\n" if item.internal else ""
        replied = ""
        replied_html = ""
        if item.quoted_text is not None:
            first = _excerpt(item.quoted_text).splitlines() or [""]
            replied = f"    回复 {item.quoted_sender}：{first[0]}{'…' if len(first) > 1 else ''}\n"
            replied_html = (
                f'<div style="color:#6b7280">回复 {escape(item.quoted_sender or "")}：'
                f"{escape(first[0])}{'…' if len(first) > 1 else ''}</div>"
            )
        text_parts.append(
            f"「{item.room_title}」\n  {_who(item)}  {beijing_time(item.created_at)}\n{note}{replied}{quoted}\n"
            f"  打开：{item.link}"
        )
        html_parts.append(
            '<div style="margin:12px 0;padding:8px 12px;border-left:3px solid #2563eb;background:#f3f4f6">'
            f"<div><strong>「{escape(item.room_title)}」</strong></div>"
            f'<div style="color:#4b5563">{escape(_who(item))} · {escape(beijing_time(item.created_at))}</div>'
            + ('<div style="color:#b45309">内部备注，客户不可见</div>' if item.internal else "")
            + replied_html
            + f"<div>{_html_text(body)}</div>"
            f'<div><a href="{escape(item.link, quote=True)}">在云顾问中打开</a></div></div>'
        )
    text_parts.append("已读的消息不会再发邮件提醒。\n" + _FOOTER)
    return Rendered(subject=subject, text="\n\n".join(text_parts) + "\n", html=_page("".join(html_parts)))


def invitation(to_name: str, username: str, link: str, expires_at: datetime, project_title: str | None) -> Rendered:
    """The email a person created from the platform's payload gets: a one-time link to set their password."""
    subject = "【云顾问】请设置你的密码，开始使用云顾问"
    joined = f"你已被加入项目「{project_title}」。" if project_title else ""
    until = beijing_time(expires_at)
    text = (
        f"{to_name}，你好：\n\n{joined}请打开下面的链接设置密码，设置后即可登录云顾问。\n\n"
        f"登录名：{username}\n设置密码：{link}\n\n"
        f"链接在 {until} 前有效，只能使用一次。如果你没有参与该项目，请忽略这封邮件。\n\n{_FOOTER}\n"
    )
    html = _page(
        f"<p>{escape(to_name)}，你好：</p>"
        f"<p>{escape(joined)}请打开下面的链接设置密码，设置后即可登录云顾问。</p>"
        f"<p>登录名：<strong>{escape(username)}</strong></p>"
        f'<p><a href="{escape(link, quote=True)}">设置密码并登录</a></p>'
        f"<p>链接在 {escape(until)} 前有效，只能使用一次。如果你没有参与该项目，请忽略这封邮件。</p>"
    )
    return Rendered(subject=subject, text=text, html=html)
