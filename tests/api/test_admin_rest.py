"""Admin routes: only admins may use them; bad bodies are refused and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import http, token_for
from tests.api.test_auth_rest import assert_error
from tests.conftest import RunningServer

NEW_STAFF = {
    "username": "new.staff",
    "name": "钱进",
    "org": "云帆银行交易银行部",
    "kind": "staff",
    "roles": ["developer"],
}


async def users(server: RunningServer) -> list[dict[str, Any]]:
    admin, _ = await token_for(server, "admin")
    status, body = await http(server, "GET", "/api/admin/users", token=admin)
    assert status == 200, body
    return list(body["users"])


async def test_admin_lists_users_without_secrets(server):
    listed = await users(server)
    usernames = {u["username"] for u in listed}
    assert {"admin", "am.wang", "xh.li", "rf.zhou"} <= usernames
    for user in listed:
        assert not any("password" in k or "hash" in k for k in user), user


@pytest.mark.parametrize("who", ["am.wang", "se.chen", "xh.li", "rf.zhou"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/users", NEW_STAFF),
        ("PATCH", "/api/admin/users/USER", {"roles": ["admin"]}),
        ("PATCH", "/api/admin/users/USER", {"active": False}),
        ("GET", "/api/admin/projects", None),
        ("GET", "/api/admin/audit", None),
    ],
    ids=["list", "create", "make admin", "disable", "projects", "audit"],
)
async def test_non_admins_are_forbidden(server, who, method, path, body):
    token, user_id = await token_for(server, who)
    before = await users(server)
    status, answer = await http(server, method, path.replace("USER", user_id), token=token, json=body)
    assert_error(status, answer, 403, "forbidden")
    assert await users(server) == before


async def test_admin_creates_a_user_who_can_then_sign_in(server):
    admin, _ = await token_for(server, "admin")
    body = {**NEW_STAFF, "password": "s3cret-pass"}
    status, body = await http(server, "POST", "/api/admin/users", token=admin, json=body)
    assert status == 201, body
    assert body["ok"] is True
    created = body["user"]
    assert {k: created[k] for k in ("username", "name", "org", "kind", "roles", "active")} == {
        **NEW_STAFF,
        "active": True,
    }
    status, login = await http(
        server, "POST", "/api/auth/login", json={"username": "new.staff", "password": "s3cret-pass"}
    )
    assert status == 200 and login["user"]["id"] == created["id"]


async def test_duplicate_username_is_409_and_changes_nothing(server):
    admin, _ = await token_for(server, "admin")
    before = await users(server)
    taken = {**NEW_STAFF, "username": "xh.li", "name": "冒名顶替"}
    status, body = await http(server, "POST", "/api/admin/users", token=admin, json=taken)
    assert_error(status, body, 409, "conflict")
    assert await users(server) == before
    status, body = await http(server, "POST", "/api/admin/users", token=admin, json=NEW_STAFF)
    assert status == 201
    status, body = await http(server, "POST", "/api/admin/users", token=admin, json=NEW_STAFF)
    assert_error(status, body, 409, "conflict")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"username": None}, "no username"),
        ({"username": "a"}, "username too short"),
        ({"username": "x" * 65}, "username too long"),
        ({"username": "new staff"}, "space in username"),
        ({"username": "王小二"}, "non-ASCII username"),
        ({"username": "../admin"}, "path in username"),
        ({"username": 42}, "number as username"),
        ({"name": None}, "no name"),
        ({"name": ""}, "empty name"),
        ({"name": "   "}, "blank name"),
        ({"name": "名" * 101}, "name too long"),
        ({"org": {"$ne": None}}, "operator as org"),
        ({"kind": "alien"}, "unknown kind"),
        ({"kind": None}, "no kind"),
        ({"roles": "developer"}, "roles not a list"),
        ({"roles": ["wizard"]}, "unknown role"),
        ({"roles": ["developer"] * 17}, "too many roles"),
        ({"password": "short"}, "short password"),
        ({"password": 12345678}, "number as password"),
        ({"active": "yes"}, "active not a bool"),
        ({"is_admin": True}, "unknown field"),
        ({"id": "u_chosen"}, "client-chosen id"),
        ({"kind": "client", "roles": ["account_manager"]}, "client with a staff role"),
        ({"kind": "client", "roles": ["admin"]}, "client as admin"),
        ({"kind": "staff", "roles": ["client_admin"]}, "staff with a client role"),
        ({"kind": "bot", "roles": ["admin"]}, "bot as admin"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_create_bodies_are_400_and_create_nothing(server, change, why):
    admin, _ = await token_for(server, "admin")
    before = await users(server)
    body = {k: v for k, v in {**NEW_STAFF, **change}.items() if v is not None}
    status, answer = await http(server, "POST", "/api/admin/users", token=admin, json=body)
    assert_error(status, answer, 400, "invalid_payload")
    assert await users(server) == before


async def test_create_with_a_body_that_is_not_json(server):
    admin, _ = await token_for(server, "admin")
    status, body = await http(
        server, "POST", "/api/admin/users", token=admin, data="username=x", headers={"Content-Type": "text/plain"}
    )
    assert_error(status, body, 400, "invalid_payload")
    status, body = await http(server, "POST", "/api/admin/users", token=admin, json=[NEW_STAFF])
    assert_error(status, body, 400, "invalid_payload")


@pytest.mark.parametrize(
    ("target", "change", "status", "code"),
    [
        ("xh.li", {"roles": ["account_manager"]}, 400, "invalid_payload"),
        ("xh.li", {"roles": ["admin"]}, 400, "invalid_payload"),
        ("xh.li", {"skills": ["银企直连"]}, 400, "invalid_payload"),
        ("am.wang", {"roles": ["client_admin"]}, 400, "invalid_payload"),
        ("am.wang", {"active": "false"}, 400, "invalid_payload"),
        ("am.wang", {"password": "short"}, 400, "invalid_payload"),
        ("am.wang", {"username": "boss"}, 400, "invalid_payload"),
        ("am.wang", {"kind": "client"}, 400, "invalid_payload"),
        ("am.wang", {"name": ""}, 400, "invalid_payload"),
        ("admin", {"active": False}, 403, "forbidden"),
        ("admin", {"roles": ["developer"]}, 403, "forbidden"),
        ("u_0000000000000000", {"name": "谁"}, 404, "not_found"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_updates_change_nothing(server, target, change, status, code):
    admin, _ = await token_for(server, "admin")
    user = await server.services.store.get_user_by_username(target)
    user_id = user.id if user else target
    before = await users(server)
    got_status, body = await http(server, "PATCH", f"/api/admin/users/{user_id}", token=admin, json=change)
    assert_error(got_status, body, status, code)
    assert await users(server) == before


async def test_update_applies_and_answers_the_user(server):
    admin, _ = await token_for(server, "admin")
    _, user_id = await token_for(server, "se.chen")
    change = {"name": "陈思远（新）", "roles": ["solution_expert", "developer"]}
    status, body = await http(server, "PATCH", f"/api/admin/users/{user_id}", token=admin, json=change)
    assert status == 200, body
    assert body["user"]["name"] == "陈思远（新）" and body["user"]["roles"] == ["solution_expert", "developer"]
    assert next(u for u in await users(server) if u["id"] == user_id)["name"] == "陈思远（新）"
