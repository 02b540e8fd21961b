"""Every text for people has its Chinese: a template without a translation, or a translation
whose placeholders differ from its template's, fails here (tests/i18n_sources.py finds them;
`make messages` adds the missing ones to their package's catalog, to be translated)."""

from __future__ import annotations

import pytest

from app.core.i18n import placeholders
from tests.i18n_sources import LANGUAGES, all_sources, catalog_path, read


@pytest.fixture(scope="module")
def sources():  # type: ignore[no-untyped-def]
    return all_sources()


def test_every_template_is_a_literal(sources) -> None:  # type: ignore[no-untyped-def]
    _, problems = sources
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_is_translated_with_the_same_placeholders(  # type: ignore[no-untyped-def]
    sources, language: str
) -> None:
    found, _ = sources
    faults = []
    for package, templates in sorted(found.items()):
        path = catalog_path(package, language)
        catalog = read(path) if path.exists() else None
        for source in templates:
            message = catalog.get(source.template) if catalog is not None else None
            if message is None or not message.string or message.fuzzy:
                faults.append(
                    f"{source.where}: no translation in {package}/{path.name}: {source.template!r}"
                )
                continue
            if placeholders(str(message.string)) != placeholders(source.template):
                faults.append(
                    f"{source.where}: placeholders differ in {path.name} of {package}: "
                    f"{source.template!r} → {message.string!r}"
                )
    assert not faults, "run `make messages`, then translate:\n" + "\n".join(faults)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogs_hold_no_unused_entries(sources, language: str) -> None:  # type: ignore[no-untyped-def]
    found, _ = sources
    for path in sorted(catalog_path("x", language).parent.parent.glob(f"*/{language}.po")):
        package = path.parent.name
        used = {source.template for source in found.get(package, [])}
        unused = [m.id for m in read(path) if m.id and m.id not in used]
        assert not unused, f"{path}: no longer used (run `make messages`): {unused}"
