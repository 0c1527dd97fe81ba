#!/usr/bin/env bash
# Starts what exists of the local stack: the HighLevel simulator on :8090.
# (oauth-backend joins once built; the full `devstack` arrives with the api-backend.)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -p highlevel-sim -- "$@"
