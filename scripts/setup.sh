#!/usr/bin/env bash
# Prepare a Debian machine for HotPlex. Safe to run again: each step checks what is already
# there and prints one line `setup: <step> ... <outcome>`.
#
#   scripts/setup.sh run     # what running needs: the venv and the pinned agent CLIs (make run)
#   scripts/setup.sh test    # that, plus Chromium (apt) and PostgreSQL for the tests (make test;
#                            # the default when no mode is given)
#   SETUP_SKIP_APT=1 scripts/setup.sh test   # never call apt-get (browser tests will skip)
#   SETUP_DRY_RUN=1 scripts/setup.sh MODE    # print the steps MODE would take; do nothing
#
# The run mode installs no system package: it needs python3 (with venv), node and npm already
# there, and says which is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'setup: %s ... %s\n' "$1" "$2"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
as_root() { if is_root; then "$@"; else sudo "$@"; fi; }
can_be_root() { is_root || command -v sudo >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Run a command with its output in a log file; show the log's tail if it fails.
logged() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 || { local rc=$?; tail -n 40 "$log" >&2; return "$rc"; }
}

# The venv with HotPlex installed editable with `$1` (pip's extras spelling, e.g. `.[dev]`).
# The test install (dev) includes everything the run install has, so it satisfies both.
python_env() {
    local target=$1 stamp=.venv/.hotplex-installed
    if [ -x .venv/bin/hotplex ] && [ -f "$stamp" ] && [ pyproject.toml -ot "$stamp" ] \
        && { [ "$(cat "$stamp")" = "$target" ] || [ "$(cat "$stamp")" = "$TEST_TARGET" ]; }; then
        say "python venv" skipped
        return
    fi
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    fi
    logged .venv/pip-install.log .venv/bin/python -m pip install --disable-pip-version-check \
        -e "$target" || die "pip install -e '$target' failed (log: .venv/pip-install.log)"
    printf '%s' "$target" >"$stamp"
    say "python venv" "installed ($target)"
}

npm_packages() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        || die "node and npm are required (Debian: apt-get install nodejs npm)"
    local stamp=node_modules/.hotplex-installed manifest=package-lock.json
    [ -f package-lock.json ] || manifest=package.json
    if [ -x node_modules/.bin/claude ] && ! [ "$manifest" -nt "$stamp" ]; then
        say "npm packages" skipped
        return
    fi
    local log
    log=$(mktemp)
    # `npm ci` refuses a lockfile that lacks optional packages of other platforms (a registry
    # without them cannot produce one); `npm install --no-save` then installs the same pins.
    if [ "$manifest" = package.json ] || ! npm ci --no-audit --no-fund >"$log" 2>&1; then
        logged "$log" npm install --no-audit --no-fund --no-save || die "npm install failed"
    fi
    rm -f "$log"
    touch "$stamp"
    say "npm packages" installed
}

chromium() {
    if [ -x /usr/bin/chromium ]; then
        say chromium skipped
    elif [ "${SETUP_SKIP_APT:-0}" = 1 ]; then
        say chromium "skipped (warning: SETUP_SKIP_APT=1, browser tests will not run)"
    elif ! can_be_root; then
        say chromium "skipped (warning: needs root or sudo, browser tests will not run)"
    else
        local log apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
            --no-install-recommends chromium chromium-driver)
        log=$(mktemp)
        if ! as_root "${apt[@]}" >"$log" 2>&1; then
            { logged "$log" as_root apt-get update -q && logged "$log" as_root "${apt[@]}"; } \
                || die "apt-get install chromium failed"
        fi
        rm -f "$log"
        say chromium installed
    fi
}

postgres() {
    if port_open 5432; then
        say postgresql ok
        return
    fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
        say postgresql "skipped (warning: nothing on 127.0.0.1:5432 and no local cluster)"
        return
    fi
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 30); do
        if port_open 5432; then
            say postgresql "ok (started $version/main)"
            return
        fi
        sleep 1
    done
    say postgresql "failed (warning: 127.0.0.1:5432 still closed after 30 s)"
}

RUN_TARGET='.[all]'
TEST_TARGET='.[dev]'
python_run() { python_env "$RUN_TARGET"; }
python_test() { python_env "$TEST_TARGET"; }

case "${1:-test}" in
    run) steps=(python_run npm_packages) ;;
    test) steps=(python_test npm_packages chromium postgres) ;;
    *) die "usage: scripts/setup.sh [run|test] (run: the venv and agent CLIs; test, the default: also Chromium and PostgreSQL)" ;;
esac
for step in "${steps[@]}"; do
    if [ "${SETUP_DRY_RUN:-0}" = 1 ]; then
        say "$step" "dry run"
    else
        "$step"
    fi
done
