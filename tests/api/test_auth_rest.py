"""Signing in over HTTP, bearer tokens, and bodies that are not JSON."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from chatserver.demo import DEMO_PASSWORD
from tests.api.helpers import bad_tokens, http, token_for

UNAUTHORIZED_LOGIN = {"ok": False, "error": {"code": "unauthorized", "message": "wrong username or password"}}


def assert_error(status: int, body: object, expected_status: int, code: str) -> None:
    assert status == expected_status, (status, body)
    assert isinstance(body, dict), body
    assert set(body) == {"ok", "error"} and body["ok"] is False, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


async def test_login_answers_a_token_and_the_user(server):
    status, body = await http(server, "POST", "/api/auth/login", json={"username": "xh.li", "password": DEMO_PASSWORD})
    assert status == 200, body
    assert body["ok"] is True and isinstance(body["token"], str)
    assert body["user"]["username"] == "xh.li" and body["user"]["kind"] == "client"
    assert "password" not in str(body["user"]).lower()
    status, me = await http(server, "GET", "/api/me", token=body["token"])
    assert status == 200 and me["user"] == body["user"]


async def test_wrong_password_unknown_user_and_disabled_user_look_the_same(server):
    wrong = await http(server, "POST", "/api/auth/login", json={"username": "xh.li", "password": "not-the-password"})
    unknown = await http(server, "POST", "/api/auth/login", json={"username": "nobody.here", "password": "whatever1"})
    _, victim_id = await token_for(server, "xh.sun")
    admin, _ = await token_for(server, "admin")
    status, _ = await http(server, "PATCH", f"/api/admin/users/{victim_id}", token=admin, json={"active": False})
    assert status == 200
    disabled = await http(server, "POST", "/api/auth/login", json={"username": "xh.sun", "password": DEMO_PASSWORD})
    assert wrong == unknown == disabled == (401, UNAUTHORIZED_LOGIN)


async def test_a_user_without_a_password_cannot_log_in(server):
    admin, _ = await token_for(server, "admin")
    status, _ = await http(
        server,
        "POST",
        "/api/admin/users",
        token=admin,
        json={"username": "no.password", "name": "无密码", "org": "云帆银行交易银行部", "kind": "staff"},
    )
    assert status == 201
    for password in ("", "cloud2026", "None", "null"):
        got = await http(server, "POST", "/api/auth/login", json={"username": "no.password", "password": password})
        assert got == (401, UNAUTHORIZED_LOGIN), password


def raw(data: str | bytes | io.BytesIO, content_type: str = "application/json") -> dict[str, Any]:
    return {"data": data, "headers": {"Content-Type": content_type}}


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        (raw("username=xh.li&password=cloud2026", "application/x-www-form-urlencoded"), "a form"),
        (raw('{"username": "xh.li", "password": "cloud2026"}', "text/plain"), "JSON sent as text/plain"),
        (raw(b""), "empty"),
        (raw(b'{"username": "xh.li", '), "cut short"),
        (raw(b'{"username": "xh.li", "password": "\xff\xfe"}'), "not UTF-8"),
        (raw(b"[" * 50_000 + b"]" * 50_000), "nested deeply"),
        (raw(b'{"a":' * 900 + b"1" + b"}" * 900), "objects nested deeply"),
        (raw(b'{"username": "xh.li", "password": NaN}'), "NaN"),
        ({"json": ["xh.li", "cloud2026"]}, "a list"),
        ({"json": "xh.li"}, "a string"),
        ({"json": None}, "null"),
        ({"json": {"username": "xh.li"}}, "no password"),
        ({"json": {"password": "cloud2026"}}, "no username"),
        ({"json": {"username": {"$ne": None}, "password": {"$ne": None}}}, "operator objects"),
        ({"json": {"username": "xh.li", "password": 20262026}}, "a number as password"),
        ({"json": {"username": "xh.li", "password": "cloud2026", "role": "admin"}}, "an unknown field"),
        ({"json": {"username": "xh.li", "password": "x" * 2000}}, "an enormous password"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_login_bodies(server, kwargs, why):
    status, body = await http(server, "POST", "/api/auth/login", **kwargs)
    assert_error(status, body, 400, "invalid_payload")


async def test_a_body_over_the_size_limit_is_refused(server):
    big = json.dumps({"username": "xh.li", "password": "p" * (2 * 1024 * 1024)}).encode()
    status, body = await http(server, "POST", "/api/auth/login", **raw(io.BytesIO(big)))
    assert_error(status, body, 413, "invalid_payload")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "bearer", "Basic eGgubGk6Y2xvdWQyMDI2", "Token abc", "Bearer junk", "Bearer a.b.c"],
    ids=repr,
)
async def test_missing_or_garbage_bearer_is_401(server, header):
    headers = {} if header is None else {"Authorization": header}
    for path in ("/api/me", "/api/rooms", "/api/admin/users"):
        status, body = await http(server, "GET", path, headers=headers)
        assert_error(status, body, 401, "unauthorized")


async def test_forged_and_broken_tokens_are_401(server):
    _, user_id = await token_for(server, "admin")
    for what, token in bad_tokens(server, user_id).items():
        status, body = await http(server, "GET", "/api/admin/users", token=token)
        assert status == 401, (what, body)
        assert_error(status, body, 401, "unauthorized")
    # the control: the server's own token for the same user works
    token, _ = await token_for(server, "admin")
    status, body = await http(server, "GET", "/api/admin/users", token=token)
    assert status == 200, body


async def test_a_disabled_users_token_stops_working_at_once(server):
    token, user_id = await token_for(server, "xh.sun")
    assert (await http(server, "GET", "/api/rooms", token=token))[0] == 200
    admin, _ = await token_for(server, "admin")
    await http(server, "PATCH", f"/api/admin/users/{user_id}", token=admin, json={"active": False})
    for path in ("/api/me", "/api/rooms"):
        status, body = await http(server, "GET", path, token=token)
        assert_error(status, body, 401, "unauthorized")
    # enabled again, the old token stays void: the user signs in anew
    await http(server, "PATCH", f"/api/admin/users/{user_id}", token=admin, json={"active": True})
    status, body = await http(server, "GET", "/api/me", token=token)
    assert_error(status, body, 401, "unauthorized")
    fresh, _ = await token_for(server, "xh.sun")
    assert (await http(server, "GET", "/api/me", token=fresh))[0] == 200


async def test_unknown_routes_and_methods_answer_json_errors(server):
    token, _ = await token_for(server, "xh.li")
    status, body = await http(server, "GET", "/api/nothing-here", token=token)
    assert_error(status, body, 404, "not_found")
    status, body = await http(server, "DELETE", "/api/me", token=token)
    assert_error(status, body, 405, "invalid_payload")
    status, body = await http(server, "GET", "/api/auth/login")
    assert_error(status, body, 405, "invalid_payload")
