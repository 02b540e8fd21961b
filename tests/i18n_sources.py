"""Every English template of the app and the catalog it belongs in (`app/<package>/zh_CN.po`).

Templates are found in the source: the literal first argument of each `Text(...)` and `N_(...)`
call, and the `title` of every AppError subclass. `python -m tests.i18n_sources` (`make
messages`) adds the templates a catalog lacks to it, untranslated, and drops the ones no longer
used; tests/core/test_i18n_catalogs.py fails until each is translated.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

APP = Path(__file__).resolve().parent.parent / "app"
LANGUAGES = ("zh_CN",)
_MARKERS = {"Text", "N_"}
# Core's machinery passes on templates it holds in tables (marked with N_ there).
_MACHINERY = {"i18n.py", "validation_text.py"}


@dataclass(frozen=True)
class Source:
    template: str
    where: str  # path:line, or the error class


def package_of(path: Path) -> str:
    """app/households/service.py → households."""
    parts = path.resolve().relative_to(APP).parts
    if len(parts) < 2:
        raise ValueError(f"{path}: texts live in a package, not in app/ itself")
    return parts[0]


def _marker(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in _MARKERS
    return isinstance(func, ast.Attribute) and func.attr == "Text"


def scan_sources() -> tuple[dict[str, list[Source]], list[str]]:
    """Templates by package, and the calls whose template is not a literal (errors)."""
    found: dict[str, list[Source]] = defaultdict(list)
    problems: list[str] = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(APP.parent)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not _marker(node):
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found[package_of(path)].append(Source(first.value, f"{where}:{node.lineno}"))
            elif path.name not in _MACHINERY:
                problems.append(f"{where}:{node.lineno}: the template is not a string literal")
    return found, problems


def error_titles() -> dict[str, list[Source]]:
    """The title of each AppError subclass, by the package that defines it."""
    import app.main
    import app.models  # noqa: F401
    from app.core.errors import AppError

    found: dict[str, list[Source]] = defaultdict(list)
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "title" in vars(cls):
            module = sys.modules[cls.__module__]
            assert module.__file__ is not None
            package = package_of(Path(module.__file__))
            found[package].append(Source(cls.title, f"{cls.__module__}.{cls.__qualname__}"))
    return found


def all_sources() -> tuple[dict[str, list[Source]], list[str]]:
    found, problems = scan_sources()
    for package, sources in error_titles().items():
        found[package].extend(sources)
    return found, problems


def catalog_path(package: str, language: str) -> Path:
    return APP / package / f"{language}.po"


def read(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file)


def update() -> None:
    """Add the missing templates to each package's catalogs; drop the unused ones."""
    found, problems = all_sources()
    for problem in problems:
        print(problem, file=sys.stderr)
    for package, sources in sorted(found.items()):
        templates = dict.fromkeys(source.template for source in sources)
        for language in LANGUAGES:
            path = catalog_path(package, language)
            catalog = read(path) if path.exists() else Catalog(locale=language)
            catalog.locale = language  # type: ignore[assignment]
            kept = Catalog(locale=language, project="fieldsync", fuzzy=False)
            for template in templates:
                old = catalog.get(template)
                flags = ["python-brace-format"] if "{" in template else []
                kept.add(template, old.string if old else "", flags=flags)
            added = [t for t in templates if catalog.get(t) is None]
            with path.open("wb") as file:
                write_po(file, kept, width=100, omit_header=True, sort_output=True)
            print(f"{path.relative_to(APP.parent)}: {len(templates)} templates, {len(added)} new")


if __name__ == "__main__":
    update()
