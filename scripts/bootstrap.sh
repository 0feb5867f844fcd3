# Sourced by the other scripts: make .venv with the project and its dev tools installed.
# Re-installs only when pyproject.toml changed, so repeated runs start at once.
set -euo pipefail

pick_python() {
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "streamsieve needs Python 3.11 or newer (apt-get install python3)" >&2
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    python=$(pick_python)
    if ! "$python" -m venv .venv 2>/dev/null; then
        # Debian ships venv separately; install it when we are allowed to.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            rm -rf .venv && "$python" -m venv .venv
        else
            echo "cannot create a virtualenv: run 'sudo apt-get install python3-venv' first" >&2
            exit 1
        fi
    fi
fi

stamp=.venv/.streamsieve-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
