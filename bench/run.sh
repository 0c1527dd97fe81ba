#!/usr/bin/env bash
# Benchmarks, each a ratio against a trivial actix handler measured in the same run (2 cores, wrk, 64
# connections). Builds the examples once in release. BENCH_SECONDS (default 10) sets each wrk run's length.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk"; exit 1; }
cargo build --release --locked -p highlevel-sim -p oauth-backend -p api-backend --examples
echo "== highlevel-sim: GET /products/"
./target/release/examples/bench_products
echo "== oauth-backend: hot token-access path"
./target/release/examples/bench_token_access
echo "== api-backend: bulk product creation against the rate-limit floor (about 3 minutes)"
./target/release/examples/bench_bulk_create
