#!/usr/bin/env bash
# Refreshes the vendored front-end assets at the exact versions pinned in
# package.json and package-lock.json: GOV.UK Frontend, MOJ Frontend, htmx
# with its SSE extension, and axe-core for the browser tests. The built
# files are committed; the server embeds web/static and serves it under
# /assets/, so nothing is fetched at run time or test time.
#
# To move to new versions: edit package.json, run
# `npm install --package-lock-only --ignore-scripts` in web/, then this.
set -euo pipefail
web="$(cd "$(dirname "$0")" && pwd)"
static="$web/static"
axe_dir="$web/../internal/web/testdata"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$web/package.json" "$web/package-lock.json" "$web/frontend.scss" "$tmp/"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
nm="$tmp/node_modules"
govuk="$nm/govuk-frontend/dist/govuk"
moj="$nm/@ministryofjustice/frontend/moj"

# Only what this script manages is replaced; the product's own files in
# static/ (app.css, app.mjs) are left alone.
rm -rf "$static/lib" "$static/fonts" "$static/images" "$static/licences"
mkdir -p "$static/lib" "$static/images" "$static/licences" "$axe_dir"

# One stylesheet, GOV.UK and MOJ Frontend compiled from their Sass with
# Arial (frontend.scss says why); the libraries' own warnings are shown
# only when the compilation fails.
(cd "$tmp" && npx --no-install sass --no-source-map --style=compressed --load-path=. --load-path=node_modules \
	--quiet-deps frontend.scss "$static/lib/frontend.min.css" 2>"$tmp/sass.log") || { cat "$tmp/sass.log" >&2; exit 1; }
cp "$govuk/govuk-frontend.min.js" "$moj/moj-frontend.min.js" "$static/lib/"
cp "$nm/htmx.org/dist/htmx.min.js" "$static/lib/htmx.min.js"
cp "$nm/htmx-ext-sse/dist/sse.min.js" "$static/lib/htmx-ext-sse.min.js"
# The stylesheet asks for /assets/images/…; it needs no fonts.
# The MOJ icons only: these pages are staff tools, not GOV.UK, so no crown,
# crest, GOV.UK wordmark or GOV.UK/MOJ favicons are copied.
cp "$moj/assets/images/icon-"* "$static/images/"

# Licences as the packages ship them (GOV.UK and MOJ Frontend ship none
# beside package.json, whose licence field VERSIONS lists).
cp "$nm/htmx.org/LICENSE" "$static/licences/htmx.txt"
cp "$nm/htmx-ext-sse/LICENSE" "$static/licences/htmx-ext-sse.txt"

cp "$nm/axe-core/axe.min.js" "$axe_dir/axe.min.js"

# The versions, for whoever reads the tree.
node -e '
  const lock = require(process.argv[1]);
  for (const [k, v] of Object.entries(lock.packages)) if (k.split("/node_modules/").length === 1 && k && !v.dev) console.log(k.replace("node_modules/", "") + " " + v.version + " " + (v.license || ""));
' "$tmp/package-lock.json" | sort > "$static/licences/VERSIONS"
echo "assets refreshed:"; cat "$static/licences/VERSIONS"
