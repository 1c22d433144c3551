#!/usr/bin/env bash
# Vendor the NL Design System CSS the pages use into web/vendor/ (committed; no build step when
# the server runs). Run it again after changing a version or the component list below, and commit
# the result:
#
#   scripts/vendor-nl-design-system.sh
#
# - @utrecht/component-library-css: the Utrecht community components. Only the rules of the
#   components in COMPONENTS are kept (scripts/css_subset.py), minified.
# - @nl-design-system-unstable/voorbeeld-design-tokens: the open "Voorbeeld" theme, the default
#   look. Only the tokens of those components and the basis tokens they (and the pages) use are
#   kept.
# Both are EUPL-1.2; their LICENSE.md files are copied next to the CSS. Nothing else is fetched:
# `npm pack` downloads the two published tarballs from the npm registry into a temporary
# directory (no install scripts run) and only the files named here are copied out.
set -euo pipefail

UTRECHT="@utrecht/component-library-css@9.0.4"
VOORBEELD="@nl-design-system-unstable/voorbeeld-design-tokens@7.4.1"
# Components of the Utrecht library the pages use (class .utrecht-NAME).
COMPONENTS=(
  root document page-header heading-1 heading-2 paragraph button button-group alert
  form-field form-label form-field-error-message textbox textarea checkbox
)
# Shared Utrecht tokens those components read (focus ring, cursors, spacing).
SHARED_TOKENS=(focus action space-around)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/web/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent --ignore-scripts "$UTRECHT" "$VOORBEELD" >packed.txt
mkdir utrecht voorbeeld
tar -xzf "$(grep '^utrecht-' packed.txt)" -C utrecht
tar -xzf "$(grep '^nl-design-system-unstable-' packed.txt)" -C voorbeeld

mkdir -p "$OUT/utrecht" "$OUT/voorbeeld"
{
  echo "/* $UTRECHT (EUPL-1.2, see LICENSE.md): components ${COMPONENTS[*]} */"
  python3 "$ROOT/scripts/css_subset.py" components utrecht/package/dist/index.css "${COMPONENTS[@]}"
} >"$OUT/utrecht/components.min.css"
cp utrecht/package/LICENSE.md "$OUT/utrecht/LICENSE.md"

prefixes=(--basis-)
for name in "${COMPONENTS[@]}" "${SHARED_TOKENS[@]}"; do prefixes+=("--utrecht-$name"); done
{
  echo "/* $VOORBEELD (EUPL-1.2, see LICENSE.md): theme class voorbeeld-theme */"
  python3 "$ROOT/scripts/css_subset.py" tokens voorbeeld/package/dist/theme.css "${prefixes[@]}"
} >"$OUT/voorbeeld/theme.min.css"
cp voorbeeld/package/LICENSE.md "$OUT/voorbeeld/LICENSE.md"

{
  echo "Vendored by scripts/vendor-nl-design-system.sh; do not edit these files by hand."
  echo
  for spec in "$UTRECHT" "$VOORBEELD"; do
    echo "$spec $(npm view "$spec" dist.integrity)"
  done
} >"$OUT/SOURCES.txt"
ls -l "$OUT"/*/*
