"""The AI advisor's knowledge base: loading, segmentation, ranking, and when it answers or hands off."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from pathlib import Path

import pytest

from integrations.knowledge import (
    DecisionPolicy,
    Hit,
    KnowledgeBase,
    KnowledgeBaseError,
    Passage,
    Ranking,
    Reason,
    asks_about_pricing,
)
from integrations.knowledge.decision import decide
from integrations.knowledge.loading import load_passages
from tests.integrations.conftest import KB_DIR


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# Loading


def test_the_shipped_knowledge_base_has_enough_passages_with_unique_ids_and_titles(kb):
    ids = [p.id for p in kb.passages]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    for p in kb.passages:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", p.id)
        assert p.title and p.document_title and p.text
        assert p.document.endswith(".md") and (KB_DIR / p.document).is_file()
        assert not p.text.startswith("#")
    assert "README.md" not in {p.document for p in kb.passages}


def test_passage_ids_are_stable(kb):
    """Ids are how the evaluation file, logs and answers refer to passages: renaming one breaks them."""
    renewal = kb.passage("cert-renewal")
    assert (renewal.title, renewal.document_title) == ("证书更新流程", "证书与密钥")
    assert renewal.document == "certificates.md"
    assert renewal.source == "证书与密钥 › 证书更新流程"
    assert "30 天" in renewal.text
    assert kb.passage("e1001-signature-failed").title == "E1001 签名验证失败"
    assert "payment-cutoff" in kb and "no-such-passage" not in kb
    with pytest.raises(KeyError):
        kb.passage("no-such-passage")
    assert [p.id for p in load_passages(KB_DIR)] == [p.id for p in kb.passages]  # same order every time


def test_the_knowledge_base_states_no_fees_or_rates(kb):
    for p in kb.passages:
        assert not asks_about_pricing(p.title + "\n" + p.text), p.id


def test_loader_reads_passages_up_to_the_next_heading_and_skips_code_and_readme(tmp_path):
    write(tmp_path, "README.md", "# About\n\n## Not a passage\n")
    write(
        tmp_path,
        "a.md",
        "# 文档甲\n\nIntroduction, not a passage.\n\n## 第一段 {#first}\nLine one.\n\n```\n## not a heading\n```\n"
        "### A sub-heading belongs to the passage\nMore.\n## 第二段 {#second}\nTwo.\n",
    )
    passages = load_passages(tmp_path)
    assert [(p.id, p.title, p.document, p.document_title) for p in passages] == [
        ("first", "第一段", "a.md", "文档甲"),
        ("second", "第二段", "a.md", "文档甲"),
    ]
    assert passages[0].text.startswith("Line one.") and "## not a heading" in passages[0].text
    assert passages[0].text.endswith("More.")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.md": "# T\n## 没有编号的标题\ntext\n"}, r"a\.md:2: heading without an id"),
        ({"a.md": "# T\n## A {#same}\nx\n", "b.md": "# U\n## B {#same}\ny\n"}, r"b\.md:2: .*'same'.*a\.md"),
        ({"a.md": "## A {#a}\ntext\n"}, r"a\.md:1: a passage before the document's `# title`"),
        ({"a.md": "# T\n## A {#a}\n\n## B {#b}\nx\n"}, r"a\.md:2: passage 'a' has no text"),
        ({"a.md": "# T\n## A {#a}\n```\ncode\n"}, r"a\.md: a code block is not closed"),
        ({"a.md": "# T\n## A {#a}\nx\n# Again\n"}, r"a\.md:4: a second `# title`"),
        ({"a.md": "# T\nno passages here\n"}, r"no passages"),
        ({"a.md": "# T\n## Bad Id {#Bad_Id}\nx\n"}, r"heading without an id"),
    ],
)
def test_loader_errors_name_the_file_and_line(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(KnowledgeBaseError, match=message):
        KnowledgeBase.load(tmp_path)


def test_loader_refuses_a_missing_folder_and_files_that_are_not_utf8(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="not a folder"):
        KnowledgeBase.load(tmp_path / "missing")
    (tmp_path / "a.md").write_bytes("# 标题\n## 段 {#a}\n正文\n".encode("gbk"))
    with pytest.raises(KnowledgeBaseError, match=r"a\.md: not UTF-8"):
        KnowledgeBase.load(tmp_path)


# Segmentation


def test_segmentation_keeps_bank_terms_from_the_user_dictionary_whole(kb):
    terms = kb.terms("銀企直連的回單和對帳單怎麼驗簽？請求頭裡要帶白名單IP嗎")
    for term in ("银企直连", "回单", "对账单", "验签", "请求头", "白名单", "ip"):
        assert term in terms


def test_a_folders_user_dictionary_and_synonyms_are_used(tmp_path, monkeypatch, caplog, capfd, kb):
    """星河云链 is no word to jieba; with it in userdict.txt it is cut whole, and its synonym finds it."""
    assert "星河云链" not in kb.terms("星河云链的接入说明")
    folder = tmp_path / "kb"
    write(folder, "a.md", "# 产品\n## 星河云链接入 {#xh}\n星河云链的接入说明。\n## 其他 {#other}\n别的内容。\n")
    write(folder, "userdict.txt", "# comment\n星河云链 nz\n")
    write(folder, "synonyms.txt", "星河云链 xhcloud\n")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where jieba would put its cache file
    caplog.set_level(logging.DEBUG)

    custom = KnowledgeBase.load(folder)

    assert "星河云链" in custom.terms("星河云链的接入说明")
    assert custom.search("How do I connect to XHCloud?")[0].passage.id == "xh"
    assert list(temp.iterdir()) == []  # loading writes nothing
    assert sorted(p.name for p in folder.iterdir()) == ["a.md", "synonyms.txt", "userdict.txt"]
    assert [r for r in caplog.records if r.name.startswith("jieba")] == []  # and logs nothing
    assert capfd.readouterr().err == ""


def test_a_bad_user_dictionary_line_is_an_error(tmp_path):
    write(tmp_path, "a.md", "# T\n## A {#a}\ntext\n")
    write(tmp_path, "userdict.txt", "银企直连 12 n extra\n")
    with pytest.raises(KnowledgeBaseError, match=r"userdict\.txt:1: expected `word \[frequency\] \[part-of-speech\]`"):
        KnowledgeBase.load(tmp_path)


def test_traditional_characters_find_the_simplified_passage(kb):
    assert kb.terms("憑證過期了，對帳單怎麼下載") == kb.terms("凭证过期了，对账单怎么下载")
    assert kb.search("憑證快過期了，要怎麼更新？")[0].passage.id == "cert-renewal"
    decision = kb.answer("銀企直連要準備哪些資料")
    assert decision.answer is not None and decision.answer.id == "onboarding-materials"


def test_full_width_letters_and_case_do_not_matter(kb):
    assert kb.terms("ＵＫｅｙ的ＰＩＮ码") == kb.terms("ukey的pin码") == kb.terms("UKEY的PIN码")


# Ranking


@pytest.mark.parametrize(
    ("question", "passage_id"),
    [
        ("E1001 签名验证失败怎么办", "e1001-signature-failed"),
        ("跨行大额付款每天几点截止", "payment-cutoff"),
        ("How do I renew the certificate?", "cert-renewal"),
        ("SFTP 上的目录都是干什么的", "sftp-directories"),
        ("UKey的PIN码锁了", "ukey-pin-locked"),
        ("测试环境的 VPN 怎么申请", "vpn-access"),
    ],
)
def test_known_questions_are_answered_with_the_right_passage(kb, question, passage_id):
    hits = kb.search(question)
    assert hits[0].passage.id == passage_id
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    decision = kb.answer(question)
    assert decision.reason is Reason.ANSWERED
    assert decision.answer == hits[0].passage and decision.hits[0] == hits[0]


def test_search_returns_at_most_k_hits_and_only_passages_that_share_a_word(kb):
    assert len(kb.search("证书", k=5)) == 5
    assert kb.search("明天天气怎么样") == []


# Hand-off


@pytest.mark.parametrize(
    "question",
    [
        "跨行转账手续费怎么算",
        "证书更新要收费吗",  # a topic the knowledge base knows, but a fee all the same
        "代發工資要收手續費嗎",
        "資金歸集的利息怎麼算",
        "现在的存款利率是多少",
        "司库系统报价多少钱",
        "今天美元汇率多少",
        "What are the fees for the API?",
        "How much does the treasury system cost?",
        "ＵＫｅｙ补办费用",
        "开通银企直连需要交钱吗？",  # paying, in other words
        "银企直连贵不贵？",
        "用你们的司库要花钱吗",
        "Is it expensive? 贵吗",
    ],
)
def test_questions_about_fees_prices_and_rates_are_always_handed_off(kb, question):
    decision = kb.answer(question)
    assert decision.answer is None and decision.handed_off
    assert decision.reason is Reason.PRICING


def test_the_pricing_rule_does_not_catch_ordinary_questions():
    ordinary = (
        "What is the rate limit per second?",
        "证书怎么更新",
        "每秒最多调用多少次",
        "who is in charge here",
        "贵公司的测试环境怎么申请？",  # 贵公司: "your company", politely
    )
    for question in ordinary:
        assert not asks_about_pricing(question), question


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("", Reason.EMPTY),
        ("的了吗？", Reason.EMPTY),
        ("明天天气怎么样", Reason.NO_MATCH),
        ("数字人民币钱包能对接吗", Reason.LOW_SCORE),
    ],
)
def test_questions_the_knowledge_base_cannot_answer_are_handed_off(kb, question, reason):
    decision = kb.answer(question)
    assert decision.answer is None
    assert decision.reason is reason


def passage(pid: str) -> Passage:
    return Passage(pid, pid, "x.md", "X", "text")


def ranked(*scores: float, best_possible: float = 20.0, pricing: bool = False) -> Ranking:
    """A ranking of passages a, b, c … with these scores."""
    hits = tuple(Hit(passage("abc"[i]), score) for i, score in enumerate(scores))
    return Ranking(hits, best_possible=best_possible, pricing=pricing)


POLICY = DecisionPolicy(min_score=0.2, min_margin=0.1, dominant_score=0.1, dominant_ratio=1.6)


def test_the_best_passage_must_clearly_beat_the_second():
    singles = DecisionPolicy(min_score=0.2, min_margin=0.1, pairs=False, dominant_score=1.0)
    assert decide(ranked(10.0, 9.5), singles).reason is Reason.AMBIGUOUS
    clear = decide(ranked(10.0, 8.0), singles)
    assert clear.reason is Reason.ANSWERED and clear.answers == (passage("a"),) and clear.answer == passage("a")
    assert decide(ranked(3.0), singles).reason is Reason.LOW_SCORE
    assert decide(ranked(5.0), singles).reason is Reason.ANSWERED


def test_a_best_passage_far_ahead_of_the_second_answers_at_a_lower_score():
    dominant = decide(ranked(3.0, 1.5), POLICY)  # 15 % of the best possible, twice the second
    assert dominant.reason is Reason.ANSWERED_DOMINANT and dominant.answers == (passage("a"),)
    assert decide(ranked(3.0, 2.0), POLICY).reason is Reason.LOW_SCORE  # only 1.5 × the second
    assert decide(ranked(1.8, 0.5), POLICY).reason is Reason.LOW_SCORE  # far ahead, but 9 %: too weak
    assert decide(ranked(3.0), POLICY).reason is Reason.LOW_SCORE  # no runner-up to be ahead of: needs min_score


def test_two_close_strong_passages_are_answered_together():
    pair = decide(ranked(10.0, 9.5, 5.0), POLICY)
    assert pair.reason is Reason.ANSWERED_PAIR and not pair.handed_off
    assert pair.answers == (passage("a"), passage("b")) and pair.answer == passage("a")
    assert decide(ranked(10.0, 9.5), POLICY).reason is Reason.ANSWERED_PAIR  # no third at all


def test_a_pair_is_still_ambiguous_when_a_third_is_close_or_the_two_are_weak():
    assert decide(ranked(10.0, 9.5, 9.0), POLICY).reason is Reason.AMBIGUOUS  # a third within the margin
    assert decide(ranked(4.2, 3.9, 1.0), POLICY).reason is Reason.AMBIGUOUS  # the second under min_score (19.5 %)
    assert decide(ranked(3.8, 3.6, 1.0), POLICY).reason is Reason.LOW_SCORE  # both under min_score
    no_pairs = DecisionPolicy(min_score=0.2, min_margin=0.1, pairs=False)
    assert decide(ranked(10.0, 9.5, 5.0), no_pairs).reason is Reason.AMBIGUOUS


@pytest.mark.parametrize("scores", [(10.0, 5.0), (10.0, 9.5, 5.0), (3.0, 1.5), (10.0,)])
def test_pricing_is_handed_off_whatever_rule_would_answer(scores):
    decision = decide(ranked(*scores, pricing=True), POLICY)
    assert decision.handed_off and decision.answers == () and decision.reason is Reason.PRICING


def test_routine_questions_matching_two_passages_get_both(kb):
    decision = kb.answer("证书快过期了怎么续期？")
    assert decision.reason is Reason.ANSWERED_PAIR
    assert [p.id for p in decision.answers] == ["cert-renewal", "e1004-cert-expired"]
    assert kb.answer("测试环境怎么申请接入？").reason is Reason.ANSWERED_PAIR


def test_before_go_live_is_not_cut_into_a_preface(kb):
    # jieba's 前要 (a preface) would swallow 上线前要…, and as a word no passage has, make the question look off-topic.
    assert kb.terms("上线前要检查哪些事项？") == ["上线", "检查", "哪些", "事项"]
    assert kb.answer("上线前要检查哪些事项？").answer == kb.passage("golive-checklist")


def test_answering_is_fast(kb):
    questions = ["证书快到期了怎么续期", "E1001", "跨行付款几点截止", "How do I renew our certificate?", "食堂几点开饭"]
    start = time.perf_counter()
    for _ in range(20):
        for q in questions:
            kb.answer(q)
    assert (time.perf_counter() - start) / 100 < 0.005  # measured well under a millisecond
