#!/bin/sh
# Prepare a controller: a Python virtual environment in .venv with the pinned
# packages of requirements.txt (each checked against its sha256), and kvmnetlab's
# own packages installed into it. Every Debian package the lab needs is installed
# later by the playbooks themselves (ansible.builtin.apt); the only exception is
# python3-venv, which has to exist before Ansible can.
#
# The environment is built from the distribution's interpreter (/usr/bin/python3),
# whatever else comes first on PATH (pyenv, conda, a newer build in /usr/local), so
# that the controller runs on the Python its users have. KVMNETLAB_PYTHON names
# another interpreter on purpose. A .venv made from another interpreter is rebuilt.
set -eu
cd "$(dirname "$0")"

if [ -n "${KVMNETLAB_PYTHON:-}" ]; then
    python=$KVMNETLAB_PYTHON
elif [ -x /usr/bin/python3 ]; then
    python=/usr/bin/python3
elif python=$(command -v python3); then
    :
else
    echo "bootstrap: no python3: install Debian's python3 (apt-get install python3)" >&2
    exit 1
fi

# Which interpreter it is: "Python <version> in <prefix>". A virtual environment reports
# its base interpreter's prefix, so an environment and the interpreter it came from agree.
identity='import platform, sys; print("Python", platform.python_version(), "in", sys.base_prefix)'

if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
    echo "bootstrap: installing python3-venv (needed before Ansible can run)" >&2
    sudo=
    if [ "$(id -u)" -ne 0 ]; then
        sudo=sudo
    fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
fi

wanted=$("$python" -c "$identity")
version=$("$python" -c 'import platform; print(platform.python_version())')
if [ -x .venv/bin/python ]; then
    have=$(.venv/bin/python -c "$identity" 2>/dev/null || echo "an interpreter that no longer runs")
    if [ "$have" != "$wanted" ]; then
        echo "bootstrap: .venv was made from $have; rebuilding it from $python ($wanted)" >&2
        "$python" -m venv --clear .venv
    fi
else
    "$python" -m venv .venv
fi
echo "bootstrap: .venv from $python (Python $version)" >&2

# Hash-checking mode: every package, dependencies included, is pinned with its sha256s
# (bin/pin-requirements writes them), so pip installs nothing else.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r requirements.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "bootstrap: controller ready (.venv)" >&2
