#!/usr/bin/env bash
# The test command. Sets everything up (Debian packages when run as root, .venv,
# an editable install with the test extras), then checks, stopping at the first
# failure:
#
#   bash scripts/test.sh                   ruff check, ruff format --check, mypy,
#                                          lint-imports, pytest
#   bash scripts/test.sh tests/unit -x     set-up, then only pytest with these arguments
#
# Works from any directory; set-up is skipped when nothing changed. The relay's
# storage tests run on SQLite and on a private PostgreSQL server that pytest
# starts itself (tests/postgres.py); `-m "not postgresql"` skips the latter.
set -euo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_setup.sh"
deskhand_setup test

BIN="$DESKHAND_VENV/bin"

# Any non-empty value turns asyncio debug mode on (slow, and it logs slow callbacks).
unset PYTHONASYNCIODEBUG

section() {
    if [ -t 2 ]; then
        printf '\n\033[1;36m===== %s =====\033[0m\n' "$*" >&2
    else
        printf '\n===== %s =====\n' "$*" >&2
    fi
}

# run_step NAME COMMAND...: runs COMMAND under a header; exits on failure.
run_step() {
    local name="$1" rc=0
    shift
    section "$name"
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '\nFAILED: %s (exit status %d)\n' "$name" "$rc" >&2
        exit "$rc"
    fi
}

run_pytest() {
    local rc=0
    # Qt tests draw off-screen unless the caller chose a platform; X tests start
    # their own Xvfb and set QT_QPA_PLATFORM=xcb for their subprocesses.
    QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" "$BIN/python" -m pytest "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then
        printf 'error: pytest collected no tests (arguments: %s)\n' "${*:-none}" >&2
        return 1
    fi
    return "$rc"
}

if [ "$#" -eq 0 ]; then
    run_step "ruff check" "$BIN/ruff" check .
    run_step "ruff format --check" "$BIN/ruff" format --check .
    run_step "mypy" "$BIN/mypy"
    run_step "lint-imports" "$BIN/lint-imports"
fi
run_step "pytest" run_pytest "$@"

section "all passed"
