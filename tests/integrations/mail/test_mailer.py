"""Emails as they arrive at a real SMTP server (aiosmtpd), and as the outbox writes them."""

from __future__ import annotations

import email
import email.policy
import ssl
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
import trustme

from integrations.mail import HeaderInjection, Mailer, MentionItem, OutboxTransport, SmtpTransport, compose
from tests.smtp import LocalSmtp

AT = datetime(2026, 12, 3, 8, 15, tzinfo=UTC)  # 16:15 in Beijing


def smtp_mailer(server: LocalSmtp, **kw: object) -> Mailer:
    transport = SmtpTransport(server.host, server.port, security="none", **kw)  # type: ignore[arg-type]
    return Mailer(transport, from_name="云顾问", from_addr="noreply@cloud-advisor.example")


def item(text: str = "@乔一帆 测试环境的证书已经发出，请查收。", **changes: object) -> MentionItem:
    values: dict[str, object] = {
        "room_title": "华岳能源股份有限公司 · 银企直连",
        "link": "http://chat.example/#room=r_1",
        "sender_name": "王晓明",
        "sender_org": "云帆银行交易银行部",
        "sender_external": False,
        "text": text,
        "created_at": AT,
    }
    values.update(changes)
    return MentionItem(**values)  # type: ignore[arg-type]


async def test_a_mention_digest_arrives_multipart_with_chinese_headers_decoded(smtp_server: LocalSmtp) -> None:
    await smtp_mailer(smtp_server).send_mention_digest(
        to_name="乔一帆", to_addr="qiao@huayue-energy.example", items=[item()]
    )

    [got] = await smtp_server.wait_for(1)
    assert got.rcpt_tos == ["qiao@huayue-energy.example"]
    assert got.mail_from == "noreply@cloud-advisor.example"
    assert got.subject == "【云顾问】王晓明 在「华岳能源股份有限公司 · 银企直连」中提到了你"
    assert got.message["To"].addresses[0].display_name == "乔一帆"
    assert got.message["From"].addresses[0].display_name == "云顾问"
    assert got.raw.isascii()  # every header encoded, bodies in base64: any server takes it
    assert b"=?utf-8?" in got.raw.split(b"\r\n\r\n", 1)[0]
    assert got.message.get_content_type() == "multipart/alternative"
    text, html = got.part("plain"), got.part("html")
    for part in (text, html):
        assert "测试环境的证书已经发出" in part
        assert "2026-12-03 16:15（北京时间）" in part
        assert "http://chat.example/#room=r_1" in part
    assert got.message["Message-ID"] and got.message["Date"]


async def test_the_headers_ask_for_no_automatic_replies(smtp_server: LocalSmtp) -> None:
    await smtp_mailer(smtp_server).send_mention_digest(to_name="乔一帆", to_addr="q@example.com", items=[item()])

    [got] = await smtp_server.wait_for(1)
    assert got.message["Auto-Submitted"] == "auto-generated"
    assert got.message["X-Auto-Response-Suppress"] == "All"
    assert got.message["Precedence"] == "bulk"


async def test_names_and_text_are_escaped_in_the_html_part(smtp_server: LocalSmtp) -> None:
    evil = '<script>alert("x")</script>'
    await smtp_mailer(smtp_server).send_mention_digest(
        to_name=f"乔一帆{evil}",
        to_addr="q@example.com",
        items=[item(text=f"看这里 {evil} & <b>粗体</b>", sender_name=f"王{evil}", room_title=f"房间{evil}")],
    )

    [got] = await smtp_server.wait_for(1)
    html = got.part("html")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&amp; &lt;b&gt;粗体&lt;/b&gt;" in html
    assert evil in got.part("plain")  # the text part is text: shown as written
    assert got.message["To"].addresses[0].display_name == f"乔一帆{evil}"  # quoted in the header, not broken


async def test_a_digest_lists_every_message_given(smtp_server: LocalSmtp) -> None:
    later = AT + timedelta(minutes=1)
    await smtp_mailer(smtp_server).send_mention_digest(
        to_name="乔一帆",
        to_addr="q@example.com",
        items=[item("第一条"), item("第二条\n第二行", sender_name="李娜", sender_external=True, created_at=later)],
    )

    [got] = await smtp_server.wait_for(1)
    assert got.subject == "【云顾问】有 2 条消息提到了你"
    text = got.part("plain")
    assert text.index("第一条") < text.index("第二条") < text.index("第二行")
    assert "李娜（云帆银行交易银行部 · 外部）" in text
    assert "第二条<br>第二行" in got.part("html")


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("Subject", {"subject": "你好\r\nBcc: everyone@example.com"}),
        ("To name", {"to_name": "乔一帆\nBcc: everyone@example.com"}),
        ("To address", {"to_addr": "q@example.com\r\nBcc: x@example.com"}),
        ("From name", {"from_name": "云顾问\r"}),
        ("X-Extra", {"headers": {"X-Extra": "a\nb"}}),
    ],
)
def test_a_line_break_in_anything_that_becomes_a_header_is_refused(field: str, changes: dict[str, object]) -> None:
    values: dict[str, object] = {
        "from_name": "云顾问",
        "from_addr": "noreply@example.com",
        "to_name": "乔一帆",
        "to_addr": "q@example.com",
        "subject": "你好",
        "text": "正文\r\n可以换行",
        "html": "<p>正文</p>",
        "now": AT,
    }
    values.update(changes)
    with pytest.raises(HeaderInjection, match=f"^{field}: a line break"):
        compose(**values)  # type: ignore[arg-type]


async def test_a_line_break_in_a_name_sends_nothing(smtp_server: LocalSmtp) -> None:
    with pytest.raises(HeaderInjection):
        await smtp_mailer(smtp_server).send_mention_digest(
            to_name="乔一帆\r\nBcc: x@example.com", to_addr="q@example.com", items=[item()]
        )
    assert smtp_server.received == []


async def test_an_invitation_carries_its_link_and_expiry(smtp_server: LocalSmtp) -> None:
    link = "http://chat.example/#invite=abc123"
    await smtp_mailer(smtp_server).send_invitation(
        to_name="乔一帆",
        to_addr="q@example.com",
        username="hy.qiao",
        link=link,
        expires_at=AT + timedelta(hours=72),
        project_title="华岳能源股份有限公司 · 银企直连",
    )

    [got] = await smtp_server.wait_for(1)
    assert got.subject == "【云顾问】请设置你的密码，开始使用云顾问"
    for part in (got.part("plain"), got.part("html")):
        assert link in part and "hy.qiao" in part and "2026-12-06 16:15（北京时间）" in part
        assert "华岳能源股份有限公司 · 银企直连" in part
    assert got.message["Auto-Submitted"] == "auto-generated"


async def test_smtp_login_is_used_when_configured(smtp_server: LocalSmtp) -> None:
    smtp_server.credentials = ("mailer", "s3cret-pass")
    await smtp_mailer(smtp_server, username="mailer", password="s3cret-pass").send_mention_digest(
        to_name="乔一帆", to_addr="q@example.com", items=[item()]
    )
    [got] = await smtp_server.wait_for(1)
    assert got.login == "mailer"

    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await smtp_mailer(smtp_server, username="mailer", password="wrong").send_mention_digest(
            to_name="乔一帆", to_addr="q@example.com", items=[item()]
        )
    assert len(smtp_server.received) == 1


async def test_a_refusing_server_raises_and_nothing_is_kept(smtp_server: LocalSmtp) -> None:
    smtp_server.refuse = 1
    with pytest.raises(aiosmtplib.SMTPException):
        await smtp_mailer(smtp_server).send_mention_digest(to_name="乔一帆", to_addr="q@example.com", items=[item()])
    assert smtp_server.received == []


async def test_the_outbox_writes_one_whole_eml_file_per_email(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    mailer = Mailer(OutboxTransport(outbox), from_name="云顾问", from_addr="noreply@example.com")

    await mailer.send_mention_digest(to_name="乔一帆", to_addr="q@example.com", items=[item()])
    await mailer.send_invitation(
        to_name="乔一帆", to_addr="q@example.com", username="hy.qiao", link="http://x/#invite=t", expires_at=AT
    )

    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary files left behind
    first = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(first, EmailMessage)
    assert str(first["Subject"]).endswith("中提到了你")
    assert first["X-Cloud-Advisor-Kind"] == "mention-digest"
    body = first.get_body(preferencelist=("plain",))
    assert body is not None and "测试环境的证书已经发出" in body.get_content()


@pytest.fixture
def certificate_authority(tmp_path: Path) -> tuple[trustme.CA, str]:
    """A CA of the tests' own (trustme) and its certificate as a PEM file, as a bank's own CA would be."""
    ca = trustme.CA()
    path = tmp_path / "bank-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_relays_get_the_email_with_the_login_encrypted(
    certificate_authority: tuple[trustme.CA, str], security: str
) -> None:
    ca, ca_file = certificate_authority
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    relay = await LocalSmtp(tls=security, tls_context=context, credentials=("mailer", "s3cret-pass")).start()
    try:
        transport = SmtpTransport(
            relay.host, relay.port, security=security, username="mailer", password="s3cret-pass", ca_file=ca_file
        )  # type: ignore[arg-type]
        mailer = Mailer(transport, from_name="云顾问", from_addr="noreply@cloud-advisor.example")
        await mailer.send_mention_digest(to_name="乔一帆", to_addr="q@example.com", items=[item()])
        [got] = await relay.wait_for(1)
        assert got.login == "mailer" and got.subject.startswith("【云顾问】王晓明")
    finally:
        await relay.stop()


async def test_a_relay_whose_certificate_is_not_trusted_gets_nothing(
    certificate_authority: tuple[trustme.CA, str],
) -> None:
    ca, _ = certificate_authority
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    relay = await LocalSmtp(tls="starttls", tls_context=context, credentials=("mailer", "s3cret-pass")).start()
    try:  # no ca_file: the system's CAs, which never signed this certificate
        transport = SmtpTransport(
            relay.host, relay.port, security="starttls", username="mailer", password="s3cret-pass"
        )
        mailer = Mailer(transport, from_name="云顾问", from_addr="noreply@cloud-advisor.example")
        with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):
            await mailer.send_mention_digest(to_name="乔一帆", to_addr="q@example.com", items=[item()])
        assert relay.received == []
    finally:
        await relay.stop()
