"""The pages' CSS stands on the vendored NL Design System: what they use is there, and they bring
no colours of their own. Also the cutting down of the vendored CSS (scripts/css_subset.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
PAGE_CSS = [WEB / "page.css", WEB / "call.css"]
VENDOR_COMPONENTS = WEB / "vendor" / "utrecht" / "components.min.css"
VENDOR_THEME = WEB / "vendor" / "voorbeeld" / "theme.min.css"


def css_subset() -> ModuleType:
    spec = importlib.util.spec_from_file_location("css_subset", ROOT / "scripts" / "css_subset.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defined_tokens(css: str) -> set[str]:
    return set(re.findall(r"(--[\w-]+)\s*:", css))


def used_tokens(css: str) -> set[str]:
    return set(re.findall(r"var\(\s*(--[\w-]+)", css))


def test_every_basis_token_the_pages_use_is_in_the_vendored_voorbeeld_theme() -> None:
    theme = defined_tokens(VENDOR_THEME.read_text(encoding="utf-8"))
    for path in PAGE_CSS:
        used = used_tokens(path.read_text(encoding="utf-8"))
        basis = {token for token in used if token.startswith("--basis")}
        assert basis, path
        assert basis <= theme, f"{path.name}: {sorted(basis - theme)}"


def test_every_page_token_is_defined_in_page_css() -> None:
    defined = defined_tokens((WEB / "page.css").read_text(encoding="utf-8"))
    for path in PAGE_CSS:
        used = used_tokens(path.read_text(encoding="utf-8"))
        balie = {token for token in used if token.startswith("--balie")}
        assert balie <= defined, f"{path.name}: {sorted(balie - defined)}"


def test_the_pages_css_has_no_colours_of_its_own_only_tokens() -> None:
    literal = re.compile(
        r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?)\(|(?<![\w-])(?:white|black)(?![\w-])"
    )
    for path in PAGE_CSS:
        css = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        assert not literal.findall(css), path.name


def test_every_utrecht_class_of_the_call_page_is_in_the_vendored_components() -> None:
    html = (WEB / "call.html").read_text(encoding="utf-8")
    components = VENDOR_COMPONENTS.read_text(encoding="utf-8")
    used = set(re.findall(r"\butrecht-[\w-]+", " ".join(re.findall(r'class="([^"]*)"', html))))
    assert {"utrecht-button", "utrecht-alert", "utrecht-textbox"} <= used
    missing = {name for name in used if f".{name}" not in components}
    assert not missing, sorted(missing)


def test_the_vendored_theme_is_the_voorbeeld_theme_with_its_licence() -> None:
    theme = VENDOR_THEME.read_text(encoding="utf-8")
    assert ".voorbeeld-theme{" in theme
    for folder in ("utrecht", "voorbeeld"):
        assert "EUPL" in (WEB / "vendor" / folder / "LICENSE.md").read_text(encoding="utf-8")


def test_cutting_keeps_the_rules_of_the_named_components_only() -> None:
    bundle = """
    /* licence */
    @charset "UTF-8";
    .utrecht-button { color: var(--utrecht-button-color); }
    .utrecht-button--primary-action:hover, .x { color: red; }
    .utrecht-button-group { display: flex; }
    .utrecht-alert__icon { width: 1em; }
    @media (min-width: 30em) { .utrecht-button { padding: 1em; } .utrecht-link { x: y; } }
    @media print { .utrecht-link { x: y; } }
    """
    kept = css_subset().subset_components(bundle, ["button"])
    assert kept == (
        ".utrecht-button{color:var(--utrecht-button-color)}"
        ".utrecht-button--primary-action:hover,.x{color:red}"
        "@media (min-width:30em){.utrecht-button{padding:1em}}"
    )


def test_cutting_tokens_keeps_what_the_kept_tokens_refer_to() -> None:
    theme = """.a-theme {
      --utrecht-button-color: var(--basis-action);
      --basis-action: var(--a-palette-blue);
      --a-palette-blue: #00f;
      --a-palette-red: #f00;
      --denhaag-thing: 1px;
    }"""
    kept = css_subset().subset_tokens(theme, ["--utrecht-button"])
    assert kept == (
        ".a-theme{--a-palette-blue:#00f;--basis-action:var(--a-palette-blue);"
        "--utrecht-button-color:var(--basis-action)}"
    )
