#!/usr/bin/env bash
# The benchmarks behind the README's Performance section, in one command. Builds the services and the `bench`
# binary once in release, then runs `bench all`, which writes bench/results.md and bench/token-access.svg.
# Needs wrk (installed here if missing) and PostgreSQL (TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/test). BENCH_SECONDS (default 5) sets each wrk run's length; any
# arguments replace `all` (e.g. `bench/run.sh storm --installations 50 --callers 200`; `--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release --locked -p oauth-backend -p api-backend -p bench
if [ $# -eq 0 ]; then set -- all; fi
"${CARGO_TARGET_DIR:-target}/release/bench" --out bench "$@"
