#!/usr/bin/env python3
"""Cloud Advisor (云顾问): start the server, or manage it from the command line.

python run.py                       start on 127.0.0.1:8080 with the embedded SQLite store
python run.py add-user ...          add a real-name user
python run.py update-user NAME ...  change a user's name, organisation, roles, password, or disable them
python run.py show-config           print the settings in force (secrets hidden)
python run.py kb-eval FILE          score the AI advisor's knowledge base on questions with known answers
python run.py demo-scenario         play the whole story against the running server (chatserver/demo_scenario.py)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from chatserver.settings import Settings, SettingsError, load_settings

_KNOWLEDGE_DIR = Path(__file__).resolve().parent / "config" / "knowledge"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Cloud Advisor (云顾问): real-time collaboration for the bank's delivery projects.",
        epilog="Settings come from defaults, then --config FILE (TOML), then CHAT_* environment variables "
        "(e.g. CHAT_PORT=9000), then these flags.",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks a free one)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file (see config/example.toml)")
    parser.add_argument(
        "--data-dir", type=Path, help="where the SQLite store and the token secret live (default data/)"
    )
    parser.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="seed demo users, projects and messages into an empty data dir (default on)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="start the server (the default)")
    sub.add_parser("show-config", help="print the settings in force, secrets hidden")

    add = sub.add_parser("add-user", help="add a real-name user")
    add.add_argument("--username", required=True)
    add.add_argument("--name", required=True, help="real name, e.g. 王晓明")
    add.add_argument("--org", required=True, help="organisation: the bank's department or the client company")
    add.add_argument("--kind", choices=["staff", "client", "bot"], required=True)
    add.add_argument("--role", action="append", default=[], dest="roles", help="a role; repeat for several")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (otherwise asked for, or none with --no-password)",
    )
    add.add_argument("--no-password", action="store_true", help="create the user without a password")

    upd = sub.add_parser("update-user", help="change a user (by username)")
    upd.add_argument("username")
    upd.add_argument("--name")
    upd.add_argument("--org")
    upd.add_argument("--role", action="append", dest="roles", help="replace the roles; repeat for several")
    upd.add_argument("--disable", action="store_true", help="disable the user (their sessions end)")
    upd.add_argument("--enable", action="store_true")
    upd.add_argument("--password-stdin", action="store_true", help="set the password read from standard input")
    upd.add_argument("--email")
    upd.add_argument(
        "--skill", action="append", dest="skills", help="replace the product skills (staffing, expert desk); repeat"
    )
    upd.add_argument("--no-skills", action="store_true", help="clear the product skills")
    upd.add_argument("--duty", action="append", help="replace the products on after-sales duty for; repeat")
    upd.add_argument("--no-duty", action="store_true", help="clear the after-sales duty")
    upd.add_argument("--max-sessions", type=int, help="concurrent expert sessions (0-50)")

    plat = sub.add_parser(
        "platform-send",
        help="send a signed request as the service platform does (uses platform_secret from the settings)",
    )
    plat.add_argument("--url", default=None, help="the server (default http://<host>:<port>)")
    plat.add_argument("--delivery-id", help="default: a new random id")
    plat_sub = plat.add_subparsers(dest="platform_command", metavar="WHAT", required=True)
    reg = plat_sub.add_parser("project", help="register a project from a JSON file (see docs/protocol.md)")
    reg.add_argument("file", type=Path)
    stg = plat_sub.add_parser("stage", help="move a project to its next stage")
    stg.add_argument("external_id")
    stg.add_argument("stage", choices=["presales", "implementation", "aftersales", "closed"])

    scn = sub.add_parser(
        "demo-scenario",
        help="play the story end to end against a running server (same --config/--data-dir as the server)",
    )
    scn.add_argument("--url", default=None, help="the server (default http://<host>:<port>)")
    scn.add_argument(
        "--staff-username", default="ss.liu", help="the service specialist the server assigns (demo data: ss.liu)"
    )
    scn.add_argument("--staff-password", default=None, help="their password (default: the demo password)")

    kbe = sub.add_parser(
        "kb-eval",
        help="score the advisor's knowledge base on a JSON Lines file of questions (hit@1, hit@3, hand-off rate)",
    )
    kbe.add_argument("file", type=Path, help="e.g. config/kb-eval.jsonl (format: integrations/knowledge/evaluation.py)")
    kbe.add_argument("--kb", type=Path, default=_KNOWLEDGE_DIR, metavar="DIR", help="default: config/knowledge")
    kbe.add_argument(
        "--calibrate", action="store_true", help="first choose the answer threshold and margin on the calibration split"
    )
    return parser


def _kb_eval(args: argparse.Namespace) -> int:
    from integrations.knowledge import KnowledgeBaseError
    from integrations.knowledge.evaluation import EvalFileError, run_evaluation

    try:
        print(run_evaluation(args.file, args.kb, recalibrate=args.calibrate))
    except (EvalFileError, KnowledgeBaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _platform_send(settings: Settings, args: argparse.Namespace) -> int:
    import aiohttp

    from integrations import platform_client

    if not settings.platform_secret:
        print("error: set platform_secret (CHAT_PLATFORM_SECRET or the config file) first", file=sys.stderr)
        return 2
    url = args.url or f"http://{settings.host}:{settings.port}"
    try:
        if args.platform_command == "project":
            try:
                project = json.loads(args.file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
                return 2
            status, answer = await platform_client.register_project(
                url, project, settings.platform_secret, delivery_id=args.delivery_id
            )
        else:
            status, answer = await platform_client.change_stage(
                url, args.external_id, args.stage, settings.platform_secret, delivery_id=args.delivery_id
            )
    except (aiohttp.ClientError, ValueError) as exc:
        print(f"error: no JSON answer from {url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return 0 if status < 400 else 1


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {"host": args.host, "port": args.port, "data_dir": args.data_dir, "demo": args.demo}
    return load_settings(args.config, os.environ, overrides)


def _with_platform_secret(settings: Settings) -> Settings:
    """Without a configured platform_secret, the one kept in `<data_dir>/platform_secret` (made on first use): the
    server, `platform-send` and `demo-scenario` run on the same data dir share it, and nothing else knows it."""
    if settings.platform_secret:
        return settings
    from chatserver.auth import load_or_create_secret

    secret = load_or_create_secret(settings.data_dir, "platform_secret")
    return settings.model_copy(update={"platform_secret": secret})


async def _demo_scenario(settings: Settings, args: argparse.Namespace) -> int:
    import aiohttp
    import socketio

    from chatserver.demo import DEMO_PASSWORD
    from chatserver.demo_scenario import ScenarioFailed, ScenarioSettings, play

    if settings.mail_smtp_host:
        print(
            "error: demo-scenario reads emails from the outbox; run the server without mail_smtp_host", file=sys.stderr
        )
        return 2
    assert settings.platform_secret is not None
    scenario = ScenarioSettings(
        url=args.url or settings.resolved_public_url,
        platform_secret=settings.platform_secret,
        outbox=settings.resolved_outbox_dir,
        staff_username=args.staff_username,
        staff_password=args.staff_password or DEMO_PASSWORD,
        mention_delay_seconds=settings.mail_mention_delay_seconds,
    )
    try:
        await play(scenario)
    except ScenarioFailed as exc:
        print(f"the scenario failed: {exc}", file=sys.stderr)
        return 1
    except (aiohttp.ClientError, socketio.exceptions.SocketIOError, OSError) as exc:
        print(f"error: cannot reach the server at {scenario.url}: {exc}", file=sys.stderr)
        return 1
    print("全部步骤完成。")
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if getattr(args, "no_password", False):
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise SystemExit("error: the password read from standard input is empty")
        return password
    if getattr(args, "password_stdin", None) is False and args.command == "update-user":
        return None
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    return first


async def _serve(settings: Settings) -> None:
    from aiohttp import web

    from chatserver.app import create_app, settle_memory_for_serving
    from chatserver.demo import DEMO_PASSWORD, DEMO_USERS
    from chatserver.logs import configure_logging

    configure_logging(settings.log_level)
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
    await runner.setup()  # the lifespan runs here: store open, demo seeded, bots started (the knowledge base loaded)
    settle_memory_for_serving()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.port
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    print(f"Cloud Advisor (云顾问) is running at http://{host}:{port}/", flush=True)
    if settings.demo:
        print(f"Demo logins (password for all: {DEMO_PASSWORD}):", flush=True)
        for u in DEMO_USERS:
            print(f"  {u.username:<10} {u.name}  {u.org}  {u.note}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("Shutting down: finishing writes under way…", flush=True)
    await runner.cleanup()


async def _manage(settings: Settings, args: argparse.Namespace) -> int:
    from chatserver.actions import accounts
    from chatserver.app import build_services
    from chatserver.errors import ChatError
    from chatserver.schemas import CreateUser, UpdateUser, parse

    services = build_services(settings)
    await services.store.open()
    try:
        password = _read_password(args)
        if args.command == "add-user":
            p = parse(
                CreateUser,
                {
                    "username": args.username,
                    "name": args.name,
                    "org": args.org,
                    "kind": args.kind,
                    "roles": args.roles,
                    "password": password,
                },
            )
            user = await accounts.create_user(
                services,
                None,
                username=p.username,
                name=p.name,
                org=p.org,
                kind=args.kind,
                roles=p.roles,
                password=p.password,
            )
        else:
            found = await services.store.get_user_by_username(args.username)
            if found is None:
                print(f"error: no user {args.username!r}", file=sys.stderr)
                return 1
            active = False if args.disable else True if args.enable else None
            changes = {
                "name": args.name,
                "org": args.org,
                "roles": args.roles,
                "active": active,
                "password": password,
                "email": args.email,
                "skills": [] if args.no_skills else args.skills,
                "duty": [] if args.no_duty else args.duty,
                "max_sessions": args.max_sessions,
            }
            u = parse(UpdateUser, {k: v for k, v in changes.items() if v is not None})
            user = await accounts.update_user(
                services,
                None,
                found.id,
                name=u.name,
                org=u.org,
                roles=u.roles,
                active=u.active,
                password=u.password,
                email=u.email,
                skills=u.skills,
                duty=u.duty,
                max_sessions=u.max_sessions,
            )
        print(json.dumps(user.to_wire(), ensure_ascii=False))
        return 0
    except ChatError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await services.store.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "kb-eval":
        return _kb_eval(args)
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command in {None, "serve", "platform-send", "demo-scenario"}:
        settings = _with_platform_secret(settings)
    if args.command == "show-config":
        print(json.dumps(settings.public_view(), ensure_ascii=False, indent=2))
        return 0
    if args.command in {"add-user", "update-user"}:
        return asyncio.run(_manage(settings, args))
    if args.command == "platform-send":
        return asyncio.run(_platform_send(settings, args))
    if args.command == "demo-scenario":
        return asyncio.run(_demo_scenario(settings, args))
    try:
        asyncio.run(_serve(settings))
    except SettingsError as exc:  # found while starting, e.g. a bot's config (`[bots.<name>].config`)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
