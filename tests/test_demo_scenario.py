"""The story end to end (chatserver/demo_scenario.py): in process against the real server, and as
`python run.py demo-scenario` against a server started by `python run.py` on the same data dir."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from chatserver.demo import DEMO_PASSWORD
from chatserver.demo_scenario import ScenarioSettings, play, read_outbox
from tests.conftest import ROOT, RunningServer, run_py_env, start_run_py

SECRET = "platform-secret-for-the-scenario-0123456789"
DELAY = 0.5


async def test_the_story_plays_end_to_end(server_factory: Any) -> None:
    server: RunningServer = await server_factory(
        platform_secret=SECRET,
        mail_mention_delay_seconds=DELAY,
        bots={"advisor": {"config": {"warm_up": True}}},  # as `python run.py` runs: the knowledge base loaded at start
    )
    outbox = server.settings.resolved_outbox_dir
    said: list[str] = []
    outcome = await play(
        ScenarioSettings(
            url=server.url,
            platform_secret=SECRET,
            outbox=outbox,
            staff_username="ss.liu",
            staff_password=DEMO_PASSWORD,
            mention_delay_seconds=DELAY,
        ),
        say=said.append,
    )

    # The room was staffed by the server: the specialist and developer by skill and load, beside the platform's people.
    assert outcome.staffing["service_specialist"] == "刘婷"
    assert outcome.staffing["developer"] == "张伟"
    assert outcome.staffing["account_manager"] == "周子涵"
    # A routine question: a passage of the knowledge base with its source, within a second.
    assert "来源" in outcome.routine_answer and "ukey-pin-locked" in outcome.routine_answer
    assert outcome.answer_seconds < 1.0
    # An unknown one: handed to the specialist, not guessed.
    assert "@刘婷" in outcome.hand_off
    # The ticket: filed, then resolved, and the room heard both.
    assert outcome.ticket_number >= 1
    assert f"#{outcome.ticket_number}" in outcome.ticket_resolved and "已解决" in outcome.ticket_resolved
    # The offline account manager: exactly one email, about the message that mentioned them.
    [mention] = outcome.mention_emails
    body = mention.get_body(preferencelist=("plain",))
    assert body is not None and "请帮忙确认一下上线时间" in body.get_content()
    assert "周子涵" in str(mention["To"])
    # The client's invitation came first; nobody else was emailed about the mention.
    manager_mail = [m for m in read_outbox(outbox) if "zihan.zhou" in str(m["To"])]
    assert [m["Subject"] for m in manager_mail if "提到了你" in str(m["Subject"])] == [mention["Subject"]]
    assert len(said) == 9


async def test_run_py_demo_scenario_plays_against_a_server_on_the_same_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = run_py_env(CHAT_MAIL_MENTION_DELAY_SECONDS="1")
    server, url = await start_run_py(data_dir, env)
    try:
        # No platform secret configured anywhere: the server and the command share the one in the data dir.
        scenario = await asyncio.create_subprocess_exec(
            sys.executable,
            "run.py",
            "--data-dir",
            str(data_dir),
            "demo-scenario",
            "--url",
            url,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(scenario.communicate(), 120)
        assert scenario.returncode == 0, err.decode()
        text = out.decode()
        assert "云顾问助手" in text and "@刘婷" in text and "已解决" in text and "收到 1 封邮件" in text
        assert (data_dir / "platform_secret").stat().st_mode & 0o077 == 0  # owner-only
    finally:
        server.terminate()
        await server.wait()


async def test_demo_scenario_says_clearly_when_no_server_answers(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        "--data-dir",
        str(tmp_path / "data"),
        "demo-scenario",
        "--url",
        "http://127.0.0.1:9",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=run_py_env(),
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "cannot reach the server at http://127.0.0.1:9" in err.decode()
