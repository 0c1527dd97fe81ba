#!/usr/bin/env bash
# Instruction profile of the token-access hot path: runs `bench token-access` (BENCH_SECONDS, default 2) with the
# cached oauth-backend under valgrind's callgrind, then prints the entries that cost most, inclusive, in
# instructions per cached read. Instruction counts do not move with the machine's load, unlike req/s; they
# overstate `rep movs`/`rep stos` copies (one count per byte), so memcpy/memset read high.
# Needs valgrind (installed here if missing) and what bench/run.sh needs; builds the release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release --locked -p oauth-backend -p api-backend -p bench
out="$(mktemp -d)"
export PROFILE_OUT="$out"
# bench starts each service through BENCH_WRAP/<binary>; only the cached oauth-backend runs under callgrind.
for binary in oauth-backend api-backend; do
  cat >"$out/$binary" <<'WRAP'
#!/bin/sh
if [ "$TOKEN_CACHE" = "true" ]; then
  # In the background, so the bench's kill at the end stops this shell and callgrind lives to write its file.
  valgrind --tool=callgrind --callgrind-out-file="$PROFILE_OUT/callgrind.out" "$BENCH_REAL_EXE" "$@" &
  wait
  exit
fi
exec "$BENCH_REAL_EXE" "$@"
WRAP
  chmod +x "$out/$binary"
done
BENCH_WRAP="$out" "${CARGO_TARGET_DIR:-target}/release/bench" --out "$out" --seconds "${BENCH_SECONDS:-2}" token-access \
  >"$out/bench.log" 2>&1 || { cat "$out/bench.log"; exit 1; }
# The service ends on SIGTERM and callgrind writes its file as it exits.
pkill -TERM -f "callgrind-out-file=$out/" || true
for _ in $(seq 60); do
  pgrep -f "callgrind-out-file=$out/" >/dev/null || break
  sleep 1
done
annotated="$(callgrind_annotate --tree=calling "$out/callgrind.out" 2>/dev/null)"
# Reads are counted by their audit entries: every read, whichever path answers it, records one, and each caller
# of `AuditSink::record` lists its calls once in the tree.
reads="$(printf '%s\n' "$annotated" |
  awk '/> +[^ ]*oauth_backend::audit::AuditSink::record \(/ {
    n = $0; sub(/.*\(/, "", n); sub(/x\).*/, "", n); gsub(",", "", n); total += n
  } END { if (total > 0) print total }')"
if [ -z "$reads" ]; then
  echo "no token read in the profile; see $out/bench.log" >&2
  exit 1
fi
echo "token reads profiled: $reads (the profile: $out/callgrind.out)"
echo "instructions per read, inclusive:"
inclusive="$(callgrind_annotate --inclusive=yes --threshold=100 "$out/callgrind.out" 2>/dev/null)"
printf '%s\n' "$inclusive" |
  grep -E '^ *[0-9,]+ \(' | grep -v 'PROGRAM TOTALS' |
  sed -E 's/^ *([0-9,]+) +\( *[0-9.]+%\) +/\1 /' |
  awk -v n="$reads" '{ ir = $1; gsub(",", "", ir); $1 = ""; printf "%8.0f %s\n", ir / n, $0 }' |
  grep -E 'actix_http::h1|actix_web|service_common|oauth_backend::(api|tokens|audit|metrics)|memcpy|memset|malloc|free|Routing|ResourceDef' |
  awk -v top="${PROFILE_TOP:-30}" 'NR <= top' | cut -c1-200
