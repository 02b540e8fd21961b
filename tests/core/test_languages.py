"""Texts for people in the caller's language (Accept-Language): problem documents end to end,
negotiation, and the headers that keep caches from mixing languages. Codes stay English."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Header, Response

import app as app_package
from app.core import i18n
from app.core.i18n import Text, negotiate
from tests.assertions import problem
from tests.builders import ID_SPOUSE_A1, World
from tests.households.test_households_api import URL as HOUSEHOLDS
from tests.households.test_households_api import with_member

ZH = {"Accept-Language": "zh-CN"}


@pytest.mark.parametrize(
    "header",
    ["zh-CN", "zh-CN,zh;q=0.9,en;q=0.8", "zh", "zh-Hans-CN", "ZH-cn", "fr;q=0.9, zh;q=0.5"],
)
def test_chinese_is_negotiated(header: str) -> None:
    assert negotiate(header, ["en", "zh-CN"]) == "zh-CN"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "en",
        "en-US",
        "fr",
        "en,zh;q=0.5",
        "zh;q=0",
        "*",
        "!!garbage!!;q=x",
        "zh;q=abc",
        ";;;,,,",
        "x" * 5000,
        "zh-CN;q=2",
    ],
)
def test_other_preferences_get_english(header: str | None) -> None:
    assert negotiate(header, ["en", "zh-CN"]) == "en"


async def test_unknown_household_404_in_both_languages(
    client: httpx.AsyncClient, world: World
) -> None:
    missing = uuid.uuid4()
    url = f"{HOUSEHOLDS}/{missing}"
    english = problem(
        await client.get(url, headers=world.headers("admin_a")), 404, "household_not_found"
    )
    assert english["title"] == "Household not found"
    assert english["detail"] == f"household {missing} does not exist or is not visible to you"

    response = await client.get(url, headers={**world.headers("admin_a"), **ZH})
    chinese = problem(response, 404, "household_not_found")
    assert chinese == {
        **english,
        "title": "未找到该户",
        "detail": f"户 {missing} 不存在或您无权查看",
    }
    assert response.headers["Content-Language"] == "zh-CN"
    assert "Accept-Language" in response.headers["Vary"]


async def test_validation_errors_name_the_field_in_both_languages(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {"village_code": 7, "members": [], "number": "x" * 500}
    english = problem(
        await client.post(HOUSEHOLDS, json=body, headers=world.headers("admin_a")),
        422,
        "validation_failed",
    )
    chinese = problem(
        await client.post(HOUSEHOLDS, json=body, headers={**world.headers("admin_a"), **ZH}),
        422,
        "validation_failed",
    )
    assert chinese["title"] == "输入有误" and english["title"] == "Invalid input"
    assert chinese["detail"].startswith("以下字段输入有误：body.")
    # The same fields and types, in the same order: only the messages differ.
    assert [(e["field"], e["type"]) for e in chinese["errors"]] == [
        (e["field"], e["type"]) for e in english["errors"]
    ]
    messages = {e["type"]: e["message"] for e in chinese["errors"]}
    assert messages["missing"] == "必填字段缺失"
    assert messages["string_type"] == "应为有效的字符串"
    assert messages["string_pattern_mismatch"] == "格式应符合 '^[0-9A-Za-z-]{4,32}$'"
    # In English, pydantic's own messages, as before.
    assert "Field required" in [e["message"] for e in english["errors"]]


async def test_malformed_json_in_both_languages(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world.headers("admin_a"), "Content-Type": "application/json", **ZH}
    chinese = problem(
        await client.post(HOUSEHOLDS, content=b'{"number": ', headers=headers),
        422,
        "validation_failed",
    )
    assert chinese["errors"][0]["field"] == "body"
    assert chinese["errors"][0]["message"].startswith("请求体不是有效的 JSON（第 ")


async def test_conflict_409_in_both_languages(client: httpx.AsyncClient, world: World) -> None:
    body = with_member(1, id_number=ID_SPOUSE_A1)
    english = problem(
        await client.post(HOUSEHOLDS, json=body, headers=world.headers("admin_a")),
        409,
        "id_number_registered",
        "body.members.1.id_number",
    )
    chinese = problem(
        await client.post(HOUSEHOLDS, json=body, headers={**world.headers("admin_a"), **ZH}),
        409,
        "id_number_registered",
        "body.members.1.id_number",
    )
    assert english["title"] == "ID number already registered"
    assert chinese["title"] == "身份证号码已登记"
    assert chinese["detail"] == "一个人只能属于一户，请先将其从另一户中移除"
    assert [e["message"] for e in chinese["errors"]] == ["该身份证号码已登记在一名现有家庭成员名下"]
    assert ID_SPOUSE_A1 not in str(chinese)  # personal data is never put into the texts


async def test_english_and_unknown_languages_answer_as_before(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"{HOUSEHOLDS}/{uuid.uuid4()}"
    plain = (await client.get(url, headers=world.headers("admin_a"))).json()
    for header in ("en", "en-US", "fr", "garbage;;q=?", "*"):
        response = await client.get(
            url, headers={**world.headers("admin_a"), "Accept-Language": header}
        )
        assert response.status_code == 404
        assert response.json() == plain
        assert response.headers["Content-Language"] == "en"


async def test_unknown_route_and_500_in_chinese(app: FastAPI, client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/api/v1/nothing-here", headers=ZH), 404, "not_found")
    assert (body["title"], body["detail"]) == ("未找到", "未找到")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internal")

    response = await client.get("/boom", headers=ZH)
    body = problem(response, 500, "internal_error")
    assert body["title"] == "服务器内部错误"
    assert response.headers["Content-Language"] == "zh-CN"
    assert "Accept-Language" in response.headers["Vary"]


async def test_bodies_without_texts_do_not_vary(client: httpx.AsyncClient, world: World) -> None:
    """A household reads the same in every language: its ETag and its body do not vary."""
    body = with_member(0)
    created = await client.post(HOUSEHOLDS, json=body, headers=world.headers("admin_a"))
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    english = await client.get(url, headers=world.headers("admin_a"))
    chinese = await client.get(url, headers={**world.headers("admin_a"), **ZH})
    assert english.content == chinese.content
    assert english.headers["ETag"] == chinese.headers["ETag"]
    assert "Content-Language" not in chinese.headers
    assert "Accept-Language" not in chinese.headers.get("Vary", "")


async def test_an_etag_of_a_body_with_texts_differs_by_language(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A representation holding rendered texts has one ETag per language (`language_etag`), so
    a cache never revalidates an English body for a zh-CN request."""
    from app.core.conditional import language_etag, none_match

    @app.get("/greeting", response_model=None)
    async def greeting(
        response: Response, if_none_match: str | None = Header(default=None)
    ) -> Response | dict[str, str]:
        tag = language_etag('"g1"')
        if none_match(if_none_match, tag):
            return Response(status_code=304, headers={"ETag": tag})
        response.headers["ETag"] = tag
        return {"text": Text("Not found").render()}

    english = await client.get("/greeting")
    chinese = await client.get("/greeting", headers=ZH)
    assert english.json() == {"text": "Not found"} and chinese.json() == {"text": "未找到"}
    assert english.headers["ETag"] != chinese.headers["ETag"]
    for response in (english, chinese):
        assert "Accept-Language" in response.headers["Vary"]
    assert english.headers["Content-Language"] == "en"
    assert chinese.headers["Content-Language"] == "zh-CN"
    # Each language revalidates its own tag only.
    again = await client.get("/greeting", headers={**ZH, "If-None-Match": chinese.headers["ETag"]})
    assert again.status_code == 304
    crossed = await client.get(
        "/greeting", headers={**ZH, "If-None-Match": english.headers["ETag"]}
    )
    assert crossed.status_code == 200 and crossed.json() == {"text": "未找到"}


def test_texts_render_english_outside_requests() -> None:
    i18n.load_catalogs(Path(app_package.__file__).parent)
    text = Text(
        "household {household_id} does not exist or is not visible to you", household_id="h1"
    )
    assert str(text) == "household h1 does not exist or is not visible to you"
    assert text.render("zh-CN") == "户 h1 不存在或您无权查看"
    assert i18n.current_language() == "en"
    joined = Text.join(
        [Text("no visit recorded"), Text("never visited (cadence {cadence} days)", cadence=30)]
    )
    assert joined.render("zh-CN") == "没有走访记录；从未走访（走访周期 30 天）"
    assert str(joined) == "no visit recorded; never visited (cadence 30 days)"
