# shellcheck shell=bash
# Shared set-up for scripts/test.sh and scripts/demo.sh. Source it, do not run it.
#
# After `deskhand_setup`, the current directory is the repository root and
# .venv holds an up-to-date editable install of deskhand with its test extras.
# Every step checks before it acts, so running it again costs a few seconds.

# The repository root, from this file's own location (works from any cwd).
DESKHAND_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
DESKHAND_VENV="$DESKHAND_ROOT/.venv"
DESKHAND_STAMP="$DESKHAND_VENV/.deskhand-install-stamp"
DESKHAND_PIP_STAMP="$DESKHAND_VENV/.deskhand-pip-upgraded"

# Debian packages the tests and the demo need: an X server and its tools (xclip
# reads and sets X selections in the acceptance tests), the runtime libraries of
# Qt's xcb platform plugin, and a system-tray host.
DESKHAND_APT_PACKAGES=(
    xvfb xauth x11-utils xdotool xclip trayer
    libegl1 libgl1 libglib2.0-0 libx11-xcb1
    libxkbcommon0 libxkbcommon-x11-0
    libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
    libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0
    libdbus-1-3 libfontconfig1 fonts-dejavu-core
)
# The relay's storage tests start a private PostgreSQL server (tests/postgres.py):
# Debian's server package provides initdb and postgres in
# /usr/lib/postgresql/<version>/bin (the tests find the newest) and the unprivileged
# postgres user they run as when the tests run as root.
DESKHAND_TEST_APT_PACKAGES=(postgresql)

_DESKHAND_APT_UPDATED=0

log() {
    if [ -t 2 ]; then
        printf '\033[1m==> %s\033[0m\n' "$*" >&2
    else
        printf '==> %s\n' "$*" >&2
    fi
}
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# True when the Debian package is installed (not merely known to dpkg).
deb_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ "$_DESKHAND_APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        apt-get update -q >&2 || die "apt-get update failed"
        _DESKHAND_APT_UPDATED=1
    fi
    log "apt-get install $*"
    apt-get install -y -q --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# Installs the missing DESKHAND_APT_PACKAGES (and, given "test", the
# DESKHAND_TEST_APT_PACKAGES), or tells a non-root user what to run.
ensure_system_packages() {
    local wanted=("${DESKHAND_APT_PACKAGES[@]}")
    if [ "${1:-}" = "test" ]; then
        wanted+=("${DESKHAND_TEST_APT_PACKAGES[@]}")
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        warn "not a Debian-based system: cannot check system packages; make sure the"
        warn "equivalents of these are installed: ${wanted[*]}"
        return 0
    fi
    local missing=() pkg
    for pkg in "${wanted[@]}"; do
        deb_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! is_root; then
        printf 'error: missing system packages. Install them with:\n\n' >&2
        printf '    sudo apt-get install --no-install-recommends %s\n\n' "${missing[*]}" >&2
        printf 'then run this command again.\n' >&2
        exit 1
    fi
    apt_install "${missing[@]}"
}

# Sets PYTHON to the first interpreter >= 3.11 (DESKHAND_PYTHON overrides).
find_python() {
    local candidates=(python3.11 python3.12 python3.13 python3) cand
    if [ -n "${DESKHAND_PYTHON:-}" ]; then
        candidates=("$DESKHAND_PYTHON")
    fi
    for cand in "${candidates[@]}"; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            PYTHON="$(command -v "$cand")"
            return 0
        fi
    done
    die "Python 3.11 or newer is required; tried: ${candidates[*]}
On Debian 12: apt-get install python3 python3-venv"
}

# Makes sure "$PYTHON -m venv" can create an environment with pip in it.
ensure_venv_module() {
    if "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        return 0
    fi
    local ver pkg
    ver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    pkg="python${ver}-venv"
    if command -v apt-get >/dev/null 2>&1 && is_root; then
        apt_install "$pkg"
        "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
            die "$PYTHON still cannot create virtual environments after installing $pkg"
    else
        die "$PYTHON cannot create virtual environments (no venv/ensurepip module).
Install it with:  sudo apt-get install $pkg   (or python3-venv)"
    fi
}

# Creates .venv with PYTHON unless a working one (Python >= 3.11) is there.
ensure_venv() {
    if [ -x "$DESKHAND_VENV/bin/python" ] &&
        "$DESKHAND_VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1; then
        return 0
    fi
    find_python
    ensure_venv_module
    log "creating $DESKHAND_VENV with $PYTHON ($("$PYTHON" -V 2>&1))"
    rm -f "$DESKHAND_STAMP" "$DESKHAND_PIP_STAMP"
    "$PYTHON" -m venv --clear "$DESKHAND_VENV" || die "could not create $DESKHAND_VENV"
}

# What the editable install depends on: pyproject.toml, and which top-level
# packages exist (setuptools maps them at install time, so a new package needs
# a reinstall), and the extras asked for.
_install_fingerprint() {
    {
        cat "$DESKHAND_ROOT/pyproject.toml"
        (cd "$DESKHAND_ROOT" && for f in */__init__.py; do if [ -e "$f" ]; then echo "$f"; fi; done)
        echo "extras=$1"
    } | sha256sum | cut -d' ' -f1
}

# pip install -e '.[EXTRAS]' unless the stamp says nothing changed since.
ensure_python_deps() {
    local extras="${1:-test}" want have=""
    local py="$DESKHAND_VENV/bin/python"
    want="$(_install_fingerprint "$extras")"
    if [ -f "$DESKHAND_STAMP" ]; then
        have="$(cat "$DESKHAND_STAMP")"
    fi
    if [ "$want" = "$have" ]; then
        return 0
    fi
    "$py" -m pip --version >/dev/null 2>&1 || "$py" -m ensurepip --upgrade >&2 ||
        die "no pip in $DESKHAND_VENV"
    if [ ! -f "$DESKHAND_PIP_STAMP" ]; then
        log "upgrading pip"
        "$py" -m pip install --disable-pip-version-check -q --upgrade pip >&2 ||
            die "could not upgrade pip"
        touch "$DESKHAND_PIP_STAMP"
    fi
    local pip_log="$DESKHAND_VENV/pip-install.log"
    log "pip install -e '.[$extras]' (log: $pip_log)"
    rm -f "$DESKHAND_STAMP"
    if ! "$py" -m pip install --disable-pip-version-check -e "${DESKHAND_ROOT}[${extras}]" \
        >"$pip_log" 2>&1; then
        tail -n 40 "$pip_log" >&2
        die "pip install -e '.[$extras]' failed; full log: $pip_log"
    fi
    printf '%s\n' "$want" >"$DESKHAND_STAMP"
}

# Everything, in order; leaves the shell in the repository root.
# `deskhand_setup test` also installs what only the tests need (PostgreSQL).
deskhand_setup() {
    cd "$DESKHAND_ROOT" || die "cannot cd to $DESKHAND_ROOT"
    ensure_system_packages "${1:-}"
    ensure_venv
    ensure_python_deps test
}
