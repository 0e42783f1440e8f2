"""The pages' language (issue 15, item 6): Simplified Chinese by default, English on choice
(the header's switcher or ?lang=en, remembered in a cookie), <html lang> right, the API left
alone; and the catalogue: every string the pages mark is translated, the compiled .mo is the
.po as it stands, the placeholders agree."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.web.i18n import COOKIE

from .conftest import PASSWORD, csrf_of
from .english import chinese_client
from .workbench_helpers import seed

TRANSLATIONS = PROJECT_ROOT / "app" / "translations"
PO = TRANSLATIONS / "zh_Hans" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")


def _sign_in(c, username: str = "rita") -> None:
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.text[:300]


def _html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)">', page).group(1)


def _flashes(page: str) -> str:
    return " ".join(re.findall(r'<li class="flash [a-z]+" role="status">(.*?)</li>', page, re.S))


def _lang_cookie(c) -> str | None:
    cookie = c.get_cookie(COOKIE)
    return cookie.value if cookie is not None else None


# ------------------------------------------------------------------------- the default


def test_pages_are_chinese_by_default(app, db, web_user, gambling_template):
    c = chinese_client(app)
    login = c.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})  # the browser's wish is not asked
    assert login.status_code == 200 and _html_lang(login.text) == "zh-Hans"
    assert "<h1>登录</h1>" in login.text and "用户名" in login.text and "密码" in login.text
    assert 'id="lang-en"' in login.text and 'aria-current="true" data-lang="zh">中文<' in login.text
    _sign_in(c)
    flagged = seed(db, content="高额回报，稳赚不赔", outcome="review", categories=("fraud",), score=7)
    queue = c.get("/review/").text
    assert _html_lang(queue) == "zh-Hans"
    assert "<h1>审核队列</h1>" in queue and "已登录：rita。" in _flashes(queue)
    assert f"模板 #{flagged}" in queue and ">转人工<" in queue           # the engine's verdict, in words
    assert re.search(r'推广 <span class="count">\d+</span>', queue)  # the type tabs
    assert "fraud" in queue and "KW_TEST" in queue                    # category and rule ids stay ids
    assert 'data-rows-one="已选 {n} 行"' in queue                     # the script's words, from the page
    item = c.get(f"/review/template/{flagged}").text
    assert _html_lang(item) == "zh-Hans"
    assert "你已认领此模板，至" in item and "判定依据" in item
    assert "已被标记（fraud）：我已核查命中内容" in item and ">待审核<" in item
    # a verdict the engine made: its arithmetic explained in Chinese
    real = c.get(f"/review/template/{gambling_template['id']}").text
    assert 'aria-label="分数构成"' in real and "总分" in real and "阈值：" in real
    assert "KW_GAMBLING_CASINO_GAME · gambling" in real and ">gambling<" in real
    account = c.get("/accounts/ACME").text
    assert "投诉率" in account and ">正常<" in account and "下一步处置" in account
    assert "无状态变更。" in account


def test_flash_messages_and_errors_are_chinese(app, db, web_user):
    c = chinese_client(app)
    _sign_in(c)
    tid = seed(db)
    page = c.get(f"/review/template/{tid}").text
    token = csrf_of(page)
    r = c.post(f"/review/template/{tid}/decision", data={"decision": "reject", "reason": "", "csrf_token": token})
    assert "驳回需要填写客户能据以修改的理由。" in _flashes(c.get(r.headers["Location"]).text)
    r = c.post(f"/review/template/{tid}/decision", data={"decision": "reject", "reason": "内容违规", "csrf_token": token})
    queue = c.get(r.headers["Location"]).text
    assert f"已驳回模板 #{tid}。" in _flashes(queue) and "队列已清空。" in _flashes(queue)
    # deciding it again: the service's conflict, in Chinese on the page
    r = c.post(f"/review/template/{tid}/decision", data={"decision": "approve", "csrf_token": token})
    assert f"模板 #{tid} 已是“已驳回”：已审核的项目不能再更改。" in _flashes(c.get(r.headers["Location"]).text)
    # error pages
    missing = c.get("/review/template/999999")
    assert missing.status_code == 404 and "404 · 未找到" in missing.text and "不存在模板 #999999。" in missing.text
    assert _html_lang(missing.text) == "zh-Hans"
    r = c.post("/review/bulk", data={"decision": "reject"})  # no CSRF token
    assert r.status_code == 400 and "该表单已过期" in r.text


def test_a_claim_held_by_another_reviewer_reads_in_chinese(app, db, web_user):
    from app.services import users

    with db.session() as s:
        users.create(s, "bob", PASSWORD, "reviewer", actor="test")
    rita, bob = chinese_client(app), chinese_client(app)
    _sign_in(rita)
    _sign_in(bob, "bob")
    tid = seed(db)
    rita.get(f"/review/template/{tid}")
    page = bob.get(f"/review/template/{tid}").text
    assert re.search(r"已被 rita 认领，至 \d\d:\d\d UTC。", page)
    queue = bob.get("/review/").text
    assert re.search(r"已被 rita 认领，至 \d\d:\d\d UTC<", queue)
    r = bob.post(f"/review/template/{tid}/decision", data={"decision": "reject", "reason": "违规",
                                                          "csrf_token": csrf_of(page)})
    assert re.search(rf"模板 #{tid} 已被 rita 认领，至 \d\d:\d\d UTC：请等待其释放，或请管理员接管。",
                     _flashes(bob.get(r.headers["Location"]).text))


# --------------------------------------------------------------------- choosing English


def test_lang_en_switches_and_is_remembered(app, web_user):
    c = chinese_client(app)
    _sign_in(c)
    page = c.get("/review/?lang=en")
    assert _html_lang(page.text) == "en" and "<h1>Review queue</h1>" in page.text
    assert _lang_cookie(c) == "en"
    cookie = page.headers["Set-Cookie"]
    assert f"{COOKIE}=en" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    # the next pages, without the parameter: still English
    again = c.get("/accounts/")
    assert _html_lang(again.text) == "en" and "<h1>Accounts</h1>" in again.text
    assert COOKIE not in again.headers.get("Set-Cookie", "")  # nothing to remember again
    # ?lang=zh goes back
    back = c.get("/review/?lang=zh-Hans")
    assert _html_lang(back.text) == "zh-Hans" and _lang_cookie(c) == "zh"
    # an unknown language changes nothing
    c.get("/review/?lang=fr")
    assert _lang_cookie(c) == "zh"


def test_the_header_switcher_keeps_the_page_and_its_query(app, db, web_user):
    c = chinese_client(app)
    _sign_in(c)
    tid = seed(db)
    page = c.get(f"/review/template/{tid}?sort=age").text
    link = re.search(r'<a href="([^"]+)" lang="en" hreflang="en" data-lang="en" id="lang-en">English</a>', page)
    assert link, "no switcher to English in the header"
    href = link.group(1).replace("&amp;", "&")
    assert href.startswith("/lang/en?next=")
    r = c.get(href)
    assert r.status_code == 302 and r.headers["Location"] == f"/review/template/{tid}?sort=age"
    assert _lang_cookie(c) == "en"
    page = c.get(r.headers["Location"]).text
    assert _html_lang(page) == "en" and "You hold this template until" in page
    assert '<strong lang="en" aria-current="true" data-lang="en">English</strong>' in page
    assert 'id="lang-zh"' in page
    # the switcher only leads to pages of this site
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = c.get("/lang/zh", query_string={"next": bad})
        assert r.headers["Location"] == "/review/"
    assert _lang_cookie(c) == "zh"
    # an unknown language: back to the page, nothing remembered
    r = c.get("/lang/xx", query_string={"next": "/accounts/"})
    assert r.status_code == 302 and r.headers["Location"] == "/accounts/" and _lang_cookie(c) == "zh"


def test_the_choice_outlives_signing_out(app, web_user):
    c = chinese_client(app)
    c.get("/lang/en")
    _sign_in(c)
    page = c.get("/review/").text
    assert "Signed in as rita." in _flashes(page)
    r = c.post("/logout", data={"csrf_token": csrf_of(page)})
    login = c.get(r.headers["Location"]).text
    assert _html_lang(login) == "en" and "Signed out." in _flashes(login) and "<h1>Sign in</h1>" in login


def test_the_switcher_on_a_page_drawn_by_a_post_returns_to_the_form(app, web_user):
    """A failed sign-in is drawn by the POST: the switcher leads back to the sign-in page."""
    c = chinese_client(app)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"username": "rita", "password": "wrong!", "csrf_token": token},
               headers={"Referer": "http://localhost/login?next=/accounts/"})
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    href = re.search(r'<a href="([^"]+)"[^>]*id="lang-en"', r.text).group(1).replace("&amp;", "&")
    assert c.get(href).headers["Location"] == "/login?next=/accounts/"


def test_the_api_is_not_translated(app, tenant):
    """Problem bodies are a machine contract: English whatever the cookie or Accept-Language."""
    tenant.client.set_cookie(COOKIE, "zh")
    r = tenant.get("/v1/templates/999999", **{"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    assert r.json["title"] == "Not found" and re.fullmatch(r"[ -~]+", r.json["detail"]), r.json
    assert "Set-Cookie" not in r.headers


# --------------------------------------------------------------------------- coverage


class _Text(HTMLParser):
    """The words a reader sees: text (not inside code, kbd, script) and the placeholder, title
    and aria-label attributes."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("code", "kbd", "script", "style"):
            self._skip += 1
        self.parts += [v for k, v in attrs if k in ("placeholder", "title", "aria-label") and v]

    def handle_endtag(self, tag):
        if tag in ("code", "kbd", "script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _english_words(page: str, allowed: set[str]) -> set[str]:
    p = _Text()
    p.feed(page)
    return {w for w in re.findall(r"[A-Za-z][\w'-]{2,}", " ".join(p.parts)) if w not in allowed}


# what stays as it is on a Chinese page: ids (rules, categories, accounts, users, actors),
# the switcher's "English", time zone, the brand
DATA_WORDS = {"smsguard", "English", "UTC", "ACME", "BETA", "rita", "ada", "user", "test", "system", "fraud",
              "gambling", "marketing", "KW_TEST", "TPL_WITHDRAWN", "ACCT_SUSPENDED", "Acme", "Ltd", "carrier-1",
              "spam"}


def test_no_english_is_left_on_the_chinese_pages(app, db, web_user, tenant, admin):
    """Every word a reviewer reads on the main pages is Chinese, except ids and data."""
    from app.services import users
    from app.store.models import Account, Complaint

    with db.session() as s:
        users.create(s, "ada", PASSWORD, "admin", actor="test")
    flagged = seed(db, content="高额回报，稳赚不赔", outcome="review", categories=("fraud",), score=7)
    seed(db, content="高额回报，稳赚不赔", account="BETA", outcome="review", categories=("fraud",), score=7)
    approved = seed(db, content="您的订单已发货。", outcome="allow", score=0, status="approved")
    with db.session() as s:
        s.get(Account, "ACME").name = "Acme Ltd"
        s.add(Complaint(account_id="ACME", phone="+8613812345678", source="carrier", reason="spam",
                        external_id="carrier-1"))
    c = chinese_client(app)
    _sign_in(c, "ada")
    pages = {"queue": c.get("/review/").text, "item": c.get(f"/review/template/{flagged}").text,
             "approved": c.get(f"/review/template/{approved}").text, "accounts": c.get("/accounts/").text,
             "account": c.get("/accounts/ACME").text}
    token = csrf_of(pages["account"])
    pages["confirm"] = c.post("/accounts/ACME/suspend", data={"note": "投诉过多", "csrf_token": token}).text
    pages["login"] = chinese_client(app).get("/login").text
    pages["404"] = c.get("/review/template/999999").text
    left = {name: sorted(_english_words(page, DATA_WORDS)) for name, page in pages.items()}
    assert not any(left.values()), left


# -------------------------------------------------------------------------- the catalogue


def _catalog():
    from babel.messages.pofile import read_po

    with open(PO, "rb") as f:
        return read_po(f, locale="zh_Hans")


def _extracted() -> set[tuple[str | None, str]]:
    """What `pybabel extract -F babel.cfg -k lazy_gettext -k _l -k lazy_pgettext:1c,2` finds now."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(PROJECT_ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None, "lazy_pgettext": ((1, "c"), 2)}
    out = set()
    for _file, _line, message, _comments, context in extract_from_dir(
            str(PROJECT_ROOT), method_map, options_map, keywords=keywords):
        out.add((context, message[0] if isinstance(message, tuple) else message))
    return out


def test_every_marked_string_is_translated():
    """A string wrapped with _() but missing from the catalogue would show in English on a
    Chinese page: run the extract / update commands of docs/review.md and translate it."""
    cat = _catalog()
    translated = {}
    for m in cat:
        if m.id:
            key = (m.context, m.id[0] if isinstance(m.id, tuple) else m.id)
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            translated[key] = all(strings) and not m.fuzzy
    extracted = _extracted()
    assert len(extracted) > 300
    missing = sorted(k for k in extracted if k not in translated)
    assert not missing, f"not in {PO.relative_to(PROJECT_ROOT)}: {missing[:10]}"
    empty = sorted(k for k, ok in translated.items() if not ok)
    assert not empty, f"untranslated or fuzzy: {empty[:10]}"


def test_translations_keep_their_placeholders():
    """%(name)s placeholders and markup: the same in the translation as in the English."""
    for m in _catalog():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        want = set(re.findall(r"%\(\w+\)s|\{\w+\}", ids[-1]))
        tags = sorted(re.findall(r"</?\w+", ids[-1]))
        for s in strings:
            if not s:
                continue  # untranslated: test_every_marked_string_is_translated says so
            assert set(re.findall(r"%\(\w+\)s|\{\w+\}", s)) == want, (m.id, s)
            assert sorted(re.findall(r"</?\w+", s)) == tags, (m.id, s)
            assert "%" not in re.sub(r"%\(\w+\)s|%%", "", s), (m.id, s)


def test_the_compiled_catalogue_is_the_po_as_it_stands():
    """The .mo is committed (a fresh clone runs without compiling): it must be the .po compiled."""
    from babel.messages.mofile import read_mo

    with open(MO, "rb") as f:
        mo = read_mo(f)
    po = _catalog()

    def pairs(cat):  # what a page can use: the translated, non-fuzzy entries
        return {(m.context, m.id if isinstance(m.id, str) else tuple(m.id)):
                m.string if isinstance(m.string, str) else tuple(m.string)
                for m in cat if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple) else (m.string,))}

    assert pairs(mo) == pairs(po), "app/translations: run `pybabel compile -d app/translations` (docs/review.md)"


def test_the_script_has_no_words_of_its_own():
    js = (PROJECT_ROOT / "app" / "web" / "static" / "review.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", js, flags=re.S)
    # its English appears only as the fallback of a data-* attribute the page always writes
    for text in re.findall(r'"([^"\n]*[a-z]{3,} [a-z]{3,}[^"\n]*)"', code):
        assert "{n}" in text or "{rows}" in text or text in ("none selected", "use strict"), text
    queue = (PROJECT_ROOT / "app" / "web" / "templates" / "queue.html").read_text(encoding="utf-8")
    for key in re.findall(r'text\(count, "([a-z-]+)"', code) + ["pattern", "pattern-clean"]:
        assert f"data-{key}=" in queue, key


@pytest.mark.parametrize("path", ["babel.cfg", "app/translations/messages.pot",
                                  "app/translations/zh_Hans/LC_MESSAGES/messages.po",
                                  "app/translations/zh_Hans/LC_MESSAGES/messages.mo"])
def test_the_catalogue_files_are_in_the_tree(path):
    assert (Path(PROJECT_ROOT) / path).is_file()
