"""Cut the NL Design System CSS down to what the pages use (scripts/vendor-nl-design-system.sh).

    python3 scripts/css_subset.py components BUNDLE.css NAME... > components.min.css
    python3 scripts/css_subset.py tokens THEME.css PREFIX... > theme.min.css

`components` keeps the top-level rules of the Utrecht bundle (and the rules inside its @media and
@supports blocks) whose selectors name one of the components `NAME` (`.utrecht-NAME`,
`.utrecht-NAME__element`, `.utrecht-NAME--modifier`), comments dropped, whitespace collapsed.

`tokens` keeps the custom properties of a design-tokens file whose names start with one of the
prefixes, plus every token they refer to through var(), so that no kept token points at nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

COMMENT = re.compile(r"/\*.*?\*/", re.S)
DECLARATION = re.compile(r"(--[\w-]+)\s*:\s*([^;]*);")
VAR_REFERENCE = re.compile(r"var\(\s*(--[\w-]+)")


def minify(css: str) -> str:
    """Comments out, runs of whitespace to one space, no spaces around punctuation."""
    css = COMMENT.sub("", css)
    css = re.sub(r"\s+", " ", css)
    css = re.sub(r"\s*([{};,>])\s*", r"\1", css)
    css = re.sub(r":\s+", ":", css)
    css = re.sub(r";}", "}", css)
    return css.strip()


def blocks(css: str) -> Iterator[tuple[str, str]]:
    """(prelude, body) of each top-level block, e.g. ('.a:hover', 'color: red')."""
    depth = 0
    start = 0
    prelude = ""
    for index, char in enumerate(css):
        if char == "{":
            if depth == 0:
                prelude = css[start:index].strip()
                start = index + 1
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                yield prelude, css[start:index]
                start = index + 1
        elif char == ";" and depth == 0:
            start = index + 1  # e.g. @charset "UTF-8";


def component_pattern(names: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"\.utrecht-(?:{alternatives})(?:__[\w-]+|--[\w-]+)?(?![\w-])")


def subset_components(css: str, names: list[str]) -> str:
    wanted = component_pattern(names)
    kept: list[str] = []
    for prelude, body in blocks(COMMENT.sub("", css)):
        if prelude.startswith("@"):
            inner = [f"{p}{{{b}}}" for p, b in blocks(body) if wanted.search(p)]
            if inner:
                kept.append(f"{prelude}{{{''.join(inner)}}}")
        elif wanted.search(prelude):
            kept.append(f"{prelude}{{{body}}}")
    return minify("\n".join(kept))


def subset_tokens(css: str, prefixes: list[str]) -> str:
    out: list[str] = []
    for prelude, body in blocks(COMMENT.sub("", css)):
        values = dict(DECLARATION.findall(body))
        todo = [name for name in values if name.startswith(tuple(prefixes))]
        keep: set[str] = set()
        while todo:
            name = todo.pop()
            if name in keep or name not in values:
                continue
            keep.add(name)
            todo.extend(VAR_REFERENCE.findall(values[name]))
        declarations = "".join(f"{name}:{values[name].strip()};" for name in sorted(keep))
        out.append(f"{prelude}{{{declarations}}}")
    return minify("\n".join(out))


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("components", "tokens"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path, *names = argv
    with open(path, encoding="utf-8") as handle:
        css = handle.read()
    result = subset_components(css, names) if mode == "components" else subset_tokens(css, names)
    sys.stdout.write(result + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
