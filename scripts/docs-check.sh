#!/usr/bin/env bash
# The reference page in a real browser: loads <base-url>/api/v1/docs in headless
# Chromium (Debian's `chromium`, installed when missing) and checks that the rendered
# page lists every operation of <base-url>/api/v1/openapi.json, by its summary.
#
# Redoc renders every operation: a section and a side-menu entry named after its
# operationId (`tag/<Tag>/operation/<operationId>`), with its summary as the heading. An
# operation counts as listed when both its `operation/<operationId>` anchor and its
# summary are on the rendered page; all must be (any missing one means the page broke:
# a script refused, the document not loaded, an operation Redoc could not render). The
# browser gets a fresh profile and no background traffic.
#
#   scripts/docs-check.sh http://127.0.0.1:4000
set -euo pipefail
BASE="${1:?usage: scripts/docs-check.sh <base-url>}"
BASE="${BASE%/}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$CHROMIUM" ]]; then
  echo "==> installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The docs routes are limited per IP (60 a minute): right after schemathesis the
# budget may be spent, so wait out a 429 (Retry-After) before loading the page.
for attempt in 1 2 3; do
  status="$(curl -sS -D "$work/headers" -o "$work/openapi.json" -w '%{http_code}' "$BASE/api/v1/openapi.json")"
  [[ "$status" == 429 && "$attempt" -lt 3 ]] || break
  wait="$(sed -n 's/^retry-after: *\([0-9]*\).*/\1/Ip' "$work/headers" | head -1)"
  echo "==> docs routes rate limited; retrying in ${wait:-60}s" >&2
  sleep "${wait:-60}"
done
if [[ "$status" != 200 ]]; then
  echo "docs page: GET $BASE/api/v1/openapi.json answered $status" >&2
  exit 1
fi
# The DOM after scripts ran (virtual time: Redoc's rendering finishes without waiting
# in real time); Chromium's own chatter goes to a log, shown if it fails.
if ! timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
  --no-first-run --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --virtual-time-budget=15000 \
  --dump-dom "$BASE/api/v1/docs" >"$work/dom.html" 2>"$work/chromium.log"; then
  tail -20 "$work/chromium.log" >&2
  echo "docs page: chromium failed to load $BASE/api/v1/docs" >&2
  exit 1
fi

python3 - "$work/openapi.json" "$work/dom.html" <<'PY'
import html, json, re, sys

document = json.load(open(sys.argv[1]))
dom = open(sys.argv[2], encoding="utf-8").read()
# The page's text, entities decoded and whitespace collapsed, as a summary reads.
text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
text = html.unescape(re.sub(r"<[^>]+>", " ", text))
text = re.sub(r"\s+", " ", text)

methods = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
operations = [
    (method.upper(), path, op.get("operationId") or "", op.get("summary") or "")
    for path, item in document.get("paths", {}).items()
    for method, op in item.items()
    if method in methods
]
anchors = set(re.findall(r"operation/([A-Za-z0-9_.-]+)", dom))
missing = [
    f"{method} {path} ({operation_id}: {summary!r})"
    for method, path, operation_id, summary in operations
    if operation_id not in anchors or not summary or " ".join(summary.split()) not in text
]
listed = len(operations) - len(missing)
print(f"docs page: {listed}/{len(operations)} operations listed")
if not operations:
    sys.exit("docs page: the document has no operations")
if missing:
    print("not on the rendered page:", *missing, sep="\n  ", file=sys.stderr)
    sys.exit(1)
PY
