"""The command line: options, settings errors, user management, start-up and SIGTERM shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from chatserver.app import build_services
from tests.conftest import connect, login, make_settings, room_id_by_title, run_py_env, start_run_py

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_shows_the_options_and_subcommands():
    out = run_cli("--help").stdout
    for option in ("--host", "--port", "--config", "--data-dir", "--demo", "--no-demo", "add-user", "show-config"):
        assert option in out


def test_show_config_merges_file_env_and_flags_and_hides_secrets(tmp_path):
    config = tmp_path / "chat.toml"
    config.write_text('port = 9100\nmax_text_chars = 500\njwt_secret = "s3cret-s3cret-s3cret-s3cret-s3cret!"\n')
    result = run_cli("--config", str(config), "--host", "0.0.0.0", "show-config", env={"CHAT_PORT": "9200"})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["port"] == 9200  # env beats the file
    assert shown["host"] == "0.0.0.0"  # flags beat env
    assert shown["max_text_chars"] == 500
    assert shown["jwt_secret"] == "***"
    assert "s3cret" not in result.stdout


def test_a_bad_setting_stops_start_up_naming_it(tmp_path):
    bad_port = run_cli("--data-dir", str(tmp_path), env={"CHAT_PORT": "eighty"})
    assert bad_port.returncode == 2
    assert "port" in bad_port.stderr
    unknown = run_cli("--data-dir", str(tmp_path), env={"CHAT_COLOUR": "blue"})
    assert unknown.returncode == 2
    assert "CHAT_COLOUR" in unknown.stderr
    config = tmp_path / "bad.toml"
    config.write_text("max_text_chars = -1\n")
    from_file = run_cli("--config", str(config), "show-config")
    assert from_file.returncode == 2
    assert "max_text_chars" in from_file.stderr


async def test_add_user_from_the_cli_can_then_sign_in(tmp_path, server_factory):
    data_dir = tmp_path / "data"
    result = run_cli(
        "--data-dir",
        str(data_dir),
        "--no-demo",
        "add-user",
        "--username",
        "ops.qian",
        "--name",
        "钱多多",
        "--org",
        "云帆银行交易银行部",
        "--kind",
        "staff",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a-long-password\n",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "钱多多"
    dup = run_cli(
        "--data-dir",
        str(data_dir),
        "add-user",
        "--username",
        "ops.qian",
        "--name",
        "x",
        "--org",
        "y",
        "--kind",
        "staff",
        "--no-password",
    )
    assert dup.returncode == 1 and "conflict" in dup.stderr

    server = await server_factory(demo=False)
    assert server.data_dir == data_dir
    token = await login(server.url, "ops.qian", "a-long-password")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert (await resp.json())["user"]["roles"] == ["admin"]


async def test_sigterm_finishes_writes_under_way_then_exits(tmp_path):
    data_dir = tmp_path / "data"
    # 40 sends at once: above the per-user burst, which would refuse some as rate_limited before the signal
    proc, url = await start_run_py(data_dir, run_py_env(CHAT_RATE_SEND_BURST="100"))
    token = await login(url, "am.wang")
    client = await connect(url, token)
    room_id = await room_id_by_title(client, "星河")

    sends = [
        asyncio.ensure_future(
            client.call(
                "send_message", {"room_id": room_id, "text": f"关机前 {i}", "client_msg_id": f"t-{i}"}, timeout=3
            )
        )
        for i in range(40)
    ]
    await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    acks = await asyncio.gather(*sends, return_exceptions=True)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    await client.disconnect()

    services = build_services(make_settings(data_dir))
    await services.store.open()
    try:
        stored, _ = await services.store.list_messages(room_id, limit=100)
    finally:
        await services.store.close()
    stored_ids = {m.client_msg_id for m in stored}
    acked_ok = {a["message"]["client_msg_id"] for a in acks if isinstance(a, dict) and a.get("ok")}
    refused = [a for a in acks if isinstance(a, dict) and not a.get("ok")]
    assert acked_ok, "some sends should have been acknowledged before the signal"
    assert acked_ok <= stored_ids  # nothing acknowledged was lost
    assert all(a["error"]["code"] == "unavailable" for a in refused), [a["error"] for a in refused]
    assert not {a["message"]["client_msg_id"] for a in refused if "message" in a} & stored_ids


def test_update_user_sets_skills_duty_and_expert_limit(demo_template, tmp_path):
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(demo_template, data_dir)
    result = run_cli(
        "--data-dir",
        str(data_dir),
        "update-user",
        "ss.liu",
        "--skill",
        "司库",
        "--duty",
        "银企直连",
        "--max-sessions",
        "4",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["skills"], shown["duty"], shown["max_sessions"]) == (["司库"], ["银企直连"], 4)
    bad = run_cli("--data-dir", str(data_dir), "update-user", "xh.li", "--skill", "司库")
    assert bad.returncode == 1 and "staff only" in bad.stderr
    cleared = run_cli("--data-dir", str(data_dir), "update-user", "ss.liu", "--no-skills")
    assert json.loads(cleared.stdout)["skills"] == []
