#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, and integration tests against highlevel-sim on SQLite and
# PostgreSQL, the browser tests (Debian's chromium over WebDriver) and the drills.
#
# It sets up what the tests need by itself:
# - PostgreSQL: TEST_DATABASE_URL if set; else the server on 127.0.0.1:5432 if one answers (database `test`,
#   made if missing); else a throwaway cluster of its own (initdb into target/test-postgres, or as root into a
#   folder of its own under the temp folder, which `postgres` can reach; a free port; stopped when this script
#   ends). TEST_OWN_POSTGRES=1 always uses a throwaway cluster.
# - chromium, chromium-driver, openssl and PostgreSQL's programs: installed with apt when missing and this
#   script runs as root; otherwise it stops at once with one line naming what to install.
# Extra arguments go to `cargo test` (e.g. `./scripts/test.sh -p api-backend walls`).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test.sh: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------------------
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# The drills start PostgreSQL servers of their own (initdb), whatever TEST_DATABASE_URL says.
[ -n "$(pg_bin)" ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "missing: ${missing[*]}. Install them (Debian: sudo apt-get install ${missing[*]}) and run again."
    exit 1
  fi
fi

# --- PostgreSQL --------------------------------------------------------------------------------------------
own_pg_dir=""
stop_own_pg() {
  if [ -n "$own_pg_dir" ] && [ -d "$own_pg_dir/data" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$own_pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
    case "$own_pg_dir" in "$PWD"/*) ;; *) rm -rf "$own_pg_dir" ;; esac
  fi
}
trap stop_own_pg EXIT
# PostgreSQL refuses to run as root: its programs run as `postgres` then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -n "${TEST_DATABASE_URL:-}" ] && [ -z "${TEST_OWN_POSTGRES:-}" ]; then
  say "PostgreSQL: TEST_DATABASE_URL"
elif [ -z "${TEST_OWN_POSTGRES:-}" ] && answers 5432; then
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
  if command -v psql >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" postgres 2>/dev/null | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" postgres >/dev/null 2>&1 || true
  fi
  say "PostgreSQL: the server on 127.0.0.1:5432"
else
  if [ "$(id -u)" = 0 ]; then
    # As root the cluster runs as `postgres`, which may not reach into this checkout (a clone under a 0700
    # folder): it gets a folder of its own under the system temp folder, removed at the end.
    own_pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/test-postgres.XXXXXX")
    chown postgres:postgres "$own_pg_dir"
  else
    own_pg_dir="$PWD/target/test-postgres"
    rm -rf "$own_pg_dir"
    mkdir -p "$own_pg_dir"
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
  say "PostgreSQL: a throwaway cluster in $own_pg_dir on port $port (nothing used on 127.0.0.1:5432)"
  as_pg "$(pg_bin)/initdb" -D "$own_pg_dir/data" -U postgres -A trust --no-sync >/dev/null
  as_pg "$(pg_bin)/pg_ctl" -D "$own_pg_dir/data" -l "$own_pg_dir/log" \
    -o "-p $port -k $own_pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" -w start >/dev/null
  as_pg "$(pg_bin)/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/test"
fi

cargo test --workspace --locked "$@"
