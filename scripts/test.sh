#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, and integration tests against highlevel-sim on SQLite and
# PostgreSQL (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo test --workspace --locked "$@"
