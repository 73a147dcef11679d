# Sourced by the runners here: `python_with MODULE PIP_SPEC` sets $py to the python of the
# venv under <workspace>/target/pyvenv (or $ONBOARD_PYVENV), creating it and pip-installing
# PIP_SPEC into it when MODULE does not import (needs PyPI access once).
python_with() {
    local here root venv
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    root="$(cd "$here/../.." && pwd)"
    venv="${ONBOARD_PYVENV:-$root/target/pyvenv}"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    if ! "$venv/bin/python" -c "import $1" 2>/dev/null; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$2"
    fi
    py="$venv/bin/python"
}
