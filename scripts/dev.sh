#!/usr/bin/env bash
# The local stack in one process: highlevel-sim on :8090, oauth-backend on :8081 and api-backend on :8082 (SQLite under data/,
# development secrets generated on first run). Prints a walkthrough; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --locked -p devstack -- "$@"
