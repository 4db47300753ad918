#!/usr/bin/env bash
# The demo command. Same set-up as scripts/test.sh, then runs deskhand-demo
# with the arguments given. Needs a desktop session; with --xvfb the demo runs
# on a virtual screen instead (a smoke check: nothing to look at).
set -euo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_setup.sh"

want_xvfb=0
for arg in "$@"; do
    if [ "$arg" = "--xvfb" ]; then
        want_xvfb=1
    fi
done

# Checked before the set-up so that a headless run fails in a second, not after
# the installs.
if [ "$want_xvfb" -eq 0 ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    cat >&2 <<'MSG'
error: the demo needs a desktop session (neither DISPLAY nor WAYLAND_DISPLAY is set).

Run it from a terminal inside your desktop. For a smoke check on a machine
without a screen, run it on a virtual X screen instead:

    bash scripts/demo.sh --xvfb
MSG
    exit 1
fi

deskhand_setup

if [ ! -x "$DESKHAND_VENV/bin/deskhand-demo" ]; then
    die "$DESKHAND_VENV/bin/deskhand-demo is missing: is the deskhand-demo entry point in pyproject.toml?"
fi
exec "$DESKHAND_VENV/bin/deskhand-demo" "$@"
