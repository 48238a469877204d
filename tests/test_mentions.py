"""`@真实姓名` mentions found in a text against a room's members (chatserver/mentions.py)."""

from __future__ import annotations

import pytest

from chatserver.mentions import find_mentions

MEMBERS = [
    ("u_li", "李娜"),
    ("u_lina2", "李娜娜"),
    ("u_wang", "王晓明"),
    ("u_anna", "Anna"),
    ("u_annalee", "Anna Lee"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@李娜 请看一下证书", ["u_li"]),
        ("@李娜，请看一下", ["u_li"]),
        ("请@李娜 看一下", ["u_li"]),
        ("＠王晓明 收到", ["u_wang"]),
        ("@李娜", ["u_li"]),
        ("@李娜娜 在吗", ["u_lina2"]),  # the longest name that fits wins
        ("@李娜你好", []),  # a name must end where a name cannot go on
        ("@Anna Lee please check", ["u_annalee"]),
        ("@Anna Leeds is here", ["u_anna"]),  # "Anna Lee" does not end there; "Anna" does
        ("@王晓明 @李娜 @王晓明", ["u_wang", "u_li"]),
        ("qiao@李娜 x", []),  # an @ inside a Latin word (an email address) starts nothing
        ("写信给 qiao@huayue-energy.example", []),
        ("@张三 不在房间", []),
        ("没有提到任何人", []),
        ("@", []),
    ],
)
def test_mentions_are_members_real_names_after_an_at(text: str, expected: list[str]) -> None:
    assert find_mentions(text, MEMBERS) == expected


def test_two_members_with_the_same_name_are_both_mentioned() -> None:
    assert find_mentions("@王伟 看下", [("u_1", "王伟"), ("u_2", "王伟"), ("u_3", "王伟强")]) == ["u_1", "u_2"]


def test_no_members_no_mentions() -> None:
    assert find_mentions("@李娜 你好", []) == []
