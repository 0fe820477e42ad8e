#!/bin/sh
# Prepare a controller: a Python virtual environment in .venv with the pinned
# packages of requirements.txt, and kvmnetlab's own packages installed into it.
# Every Debian package the lab needs is installed later by the playbooks
# themselves (ansible.builtin.apt); the only exception is python3-venv, which
# has to exist before Ansible can.
set -eu
cd "$(dirname "$0")"
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    echo "bootstrap: installing python3-venv (needed before Ansible can run)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "bootstrap: controller ready (.venv)" >&2
