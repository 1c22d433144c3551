"""A municipality's own look (huisstijl) on the pages, without changing the code.

The pages are built on the NL Design System: components read design tokens (CSS custom
properties) and the open Voorbeeld theme sets them by default (class ``voorbeeld-theme`` on
``<html>``). ``balie serve --theme-css FILE`` adds the municipality's tokens stylesheet: the server
serves it at ``/theme/theme.css``, the pages load it after the default theme, and its theme class
goes on ``<html>`` next to ``voorbeeld-theme``, so its tokens win and any token it leaves out keeps
the Voorbeeld value. The class is ``--theme-class NAME`` or, without it, the first class selector
in the stylesheet (``.rotterdam-theme { --basis-... }`` gives ``rotterdam-theme``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

THEME_CSS_URL = "/theme/theme.css"
DEFAULT_THEME_CLASS = "voorbeeld-theme"
# Where the pages load the municipality's stylesheet (after the default theme).
THEME_CSS_MARKER = "<!-- balie:theme-css -->"
THEME_CLASS_ATTRIBUTE = f'class="utrecht-root {DEFAULT_THEME_CLASS}"'

_CLASS_NAME = re.compile(r"-?[_a-zA-Z][_a-zA-Z0-9-]*")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_FIRST_CLASS = re.compile(r"(?:^|[\s,>+~}])\.(-?[_a-zA-Z][_a-zA-Z0-9-]*)[^{};]*\{")
MAX_THEME_CSS_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Theme:
    """The municipality's tokens stylesheet and the class that switches it on (None: only load)."""

    css_file: Path
    class_name: str | None


def check_class_name(name: str) -> str:
    """`name` if it is a plain CSS class name (no dot, no spaces), else ValueError."""
    if not _CLASS_NAME.fullmatch(name):
        raise ValueError(f"not a CSS class name: {name!r} (letters, digits, - and _; no dot)")
    return name


def first_class_selector(css: str) -> str | None:
    """The first class in a selector of the stylesheet (comments skipped), or None."""
    match = _FIRST_CLASS.search(_COMMENT.sub("", css))
    return match.group(1) if match else None


def load_theme(css_file: Path, class_name: str | None = None) -> Theme:
    """Check the stylesheet (a readable, not too large file) and settle its theme class."""
    css_file = css_file.resolve()
    if not css_file.is_file():
        raise ValueError(f"theme stylesheet not found: {css_file}")
    if css_file.stat().st_size > MAX_THEME_CSS_BYTES:
        raise ValueError(f"theme stylesheet is larger than 5 MB: {css_file}")
    if class_name is not None:
        return Theme(css_file, check_class_name(class_name.strip()))
    css = css_file.read_text(encoding="utf-8")
    return Theme(css_file, first_class_selector(css))


def apply_theme(html: str, theme: Theme | None) -> str:
    """The page with the theme's stylesheet linked and its class on ``<html>``."""
    if theme is None:
        return html.replace(THEME_CSS_MARKER, "", 1)
    link = f'<link rel="stylesheet" href="{THEME_CSS_URL}">'
    html = html.replace(THEME_CSS_MARKER, link, 1)
    if theme.class_name and theme.class_name != DEFAULT_THEME_CLASS:
        themed = f'class="utrecht-root {DEFAULT_THEME_CLASS} {theme.class_name}"'
        html = html.replace(THEME_CLASS_ATTRIBUTE, themed, 1)
    return html
