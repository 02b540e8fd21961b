"""Texts for people in the caller's language: English source text, translated when rendered.

A message is a `Text`: an English template with named placeholders and their values
(`Text("household {id} does not exist", id=household_id)`). It is rendered when the response
is written, in the language negotiated from the request's `Accept-Language`, never when it is
raised or built; `str(text)` is the English. Codes, field paths and the values put into
placeholders (names, numbers, codes) are never translated.

The translations are gettext catalogs, one per package and language (`app/<package>/zh_CN.po`),
keyed by the English template: each package owns its words, and core knows none of the domain's.
`load_catalogs` reads them at assembly (`create_app`). `tests/core/test_i18n_catalogs.py` fails
when a template has no translation, or a translation's placeholders differ from its source's.

`LanguageMiddleware` negotiates the language once per request and tags each response whose body
holds rendered text with `Content-Language` and `Vary: Accept-Language`.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.core import parse_locale
from babel.messages.pofile import read_po
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LANGUAGE = "en"
"""The source language of every template, and the answer to a caller who asks for no other."""

# Language tag → English template → its translation.
_catalogs: dict[str, dict[str, str]] = {}


def N_(template: str) -> str:
    """Marks a template kept in data (a table of messages) for the catalogs; returns it as is."""
    return template


SEPARATOR = N_("; ")
"""Between the parts of a list of texts (Text.join)."""


class Text:
    """A message for people: an English template with `{named}` placeholders and their values.

    Values may be Texts themselves (rendered in the same language). The template must be a
    literal at its call site so that the catalog test finds it.
    """

    __slots__ = ("params", "template")

    def __init__(self, template: str, /, **params: Any) -> None:
        self.template = template
        self.params = params

    def render(self, language: str | None = None) -> str:
        """The text in `language` (default: the request's), English where no translation is."""
        language = language or current_language()
        template = translate(self.template, language)
        values = {name: render(value, language) for name, value in self.params.items()}
        return template.format(**values)

    def __str__(self) -> str:
        return self.render(DEFAULT_LANGUAGE)

    def __repr__(self) -> str:
        return f"Text({self.template!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Text):
            return NotImplemented
        return (self.template, self.params) == (other.template, other.params)

    def __hash__(self) -> int:
        return hash(self.template)

    @classmethod
    def join(cls, parts: Iterable[Text | str], separator: str = SEPARATOR) -> Text:
        """The parts one after the other, `separator` between them (itself translated)."""
        params = {f"p{i}": part for i, part in enumerate(parts)}
        sep = separator.replace("{", "{{").replace("}", "}}")
        return _Joined(sep.join("{" + name + "}" for name in params), separator, **params)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # A string in the JSON schema; a str or a Text in Python; rendered when serialized.
        return core_schema.union_schema(
            [core_schema.str_schema(), core_schema.is_instance_schema(cls)],
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: render(value), info_arg=False, return_schema=core_schema.str_schema()
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(core_schema.str_schema())


class _Joined(Text):
    """Text.join: its template is made, not written; the separator is what gets translated."""

    __slots__ = ("separator",)

    def __init__(self, template: str, separator: str, /, **params: Any) -> None:
        super().__init__(template, **params)
        self.separator = separator

    def render(self, language: str | None = None) -> str:
        language = language or current_language()
        separator = translate(self.separator, language)
        return separator.join(render(value, language) for value in self.params.values())


class _Verbatim(Text):
    """A message that came without a template (a library's): shown as it is in every language."""

    __slots__ = ()

    def render(self, language: str | None = None) -> str:
        return self.template


def text_of(error: BaseException) -> Text:
    """The Text an exception was raised with (`ValueError(Text(...))`), else its message as is."""
    if error.args and isinstance(error.args[0], Text):
        return error.args[0]
    return _Verbatim(str(error))


def render(value: Any, language: str | None = None) -> Any:
    """A Text rendered; dicts and lists rendered throughout; other values as they are."""
    if isinstance(value, Text):
        return value.render(language)
    if isinstance(value, dict):
        return {key: render(item, language) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, language) for item in value]
    return value


def translate(template: str, language: str) -> str:
    """The translation of a template (titles are templates without placeholders)."""
    if language != DEFAULT_LANGUAGE:
        _mark_rendered()
        return _catalogs.get(language, {}).get(template) or template
    _mark_rendered()
    return template


def placeholders(template: str) -> list[str]:
    """The placeholders of a template with their conversion and format spec, sorted."""
    return sorted(
        f"{name}!{conversion or ''}:{spec or ''}"
        for _, name, spec, conversion in string.Formatter().parse(template)
        if name is not None
    )


# --- catalogs ------------------------------------------------------------------------------------


def language_of_catalog(path: Path) -> str:
    """`zh_CN.po` holds the language `zh-CN`."""
    return path.stem.replace("_", "-")


def read_catalog(path: Path) -> dict[str, str]:
    """The translated, non-fuzzy entries of one .po file."""
    with path.open("rb") as file:
        catalog = read_po(file)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy
    }


def load_catalogs(root: Path) -> None:
    """Read every package's catalogs (`<root>/<package>/<language>.po`), replacing those held."""
    loaded: dict[str, dict[str, str]] = {}
    for path in sorted(root.glob("*/*.po")):
        loaded.setdefault(language_of_catalog(path), {}).update(read_catalog(path))
    _catalogs.clear()
    _catalogs.update(loaded)


def languages() -> list[str]:
    """The languages served: English, and each one a catalog is loaded for."""
    return [DEFAULT_LANGUAGE, *sorted(_catalogs)]


# --- negotiation ---------------------------------------------------------------------------------


def _ranges(header: str) -> Iterator[tuple[float, str]]:
    for item in header.split(",")[:32]:  # a header of a hundred ranges is not a preference
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and 0 < quality <= 1:
            yield quality, tag.strip()


def negotiate(accept_language: str | None, available: Iterable[str] | None = None) -> str:
    """The language of the response: the caller's most preferred one that is served, matched on
    the primary language subtag (`zh`, `zh-Hans-CN`, `zh-CN` all get `zh-CN`), else English.
    Never fails: a malformed header is no preference."""
    served = {tag.split("-")[0].lower(): tag for tag in (available or languages())}
    ranked = sorted(_ranges(accept_language or ""), key=lambda pair: -pair[0])  # stable
    for _, tag in ranked:
        try:
            language = parse_locale(tag, sep="-")[0].lower()
        except ValueError:
            continue
        if language in served:
            return served[language]
    return DEFAULT_LANGUAGE


# --- the request's language ----------------------------------------------------------------------


@dataclass
class _Rendering:
    language: str
    rendered: bool = False  # whether the response holds text rendered in `language`


_current: ContextVar[_Rendering | None] = ContextVar("fieldsync_language", default=None)


def current_language() -> str:
    """The language negotiated for the request being served (English outside requests)."""
    rendering = _current.get()
    return rendering.language if rendering else DEFAULT_LANGUAGE


def _mark_rendered() -> None:
    rendering = _current.get()
    if rendering is not None:
        rendering.rendered = True


@contextmanager
def using_language(language: str) -> Iterator[None]:
    """Render in `language` within the block (a request's language, set by the middleware)."""
    token = _current.set(_Rendering(language))
    try:
        yield
    finally:
        _current.reset(token)


def language_headers(language: str, headers: MutableHeaders) -> None:
    """Say that the body is in `language` and depends on Accept-Language (for caches)."""
    headers["Content-Language"] = language
    vary = [v.strip() for v in headers.get("Vary", "").split(",") if v.strip()]
    if not any(v.lower() in ("accept-language", "*") for v in vary):
        headers["Vary"] = ", ".join([*vary, "Accept-Language"])


class LanguageMiddleware:
    """Negotiates each request's language; tags responses that hold rendered text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rendering = _Rendering(negotiate(Headers(scope=scope).get("accept-language")))

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start" and rendering.rendered:
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                language_headers(rendering.language, headers)
                message = {**message, "headers": headers.raw}
            await send(message)

        token = _current.set(rendering)
        try:
            await self.app(scope, receive, tagged_send)
        finally:
            _current.reset(token)


def catalog(language: str) -> Mapping[str, str]:
    """The translations loaded for a language (for tests and tools)."""
    return _catalogs.get(language, {})
