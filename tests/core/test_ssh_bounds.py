"""Every SSH connection Ansible opens to a lab host is bounded by keepalives."""

from __future__ import annotations

import configparser
import shlex

from tests.helpers import REPO

BOUND_S = 60  # a half-open connection is given up within this many seconds


def ssh_options(args: str) -> dict[str, str]:
    words = shlex.split(args)
    pairs = [words[i + 1] for i, w in enumerate(words) if w == "-o" and i + 1 < len(words)]
    return dict(p.split("=", 1) for p in pairs)


def test_ansible_cfg_keeps_ssh_connections_alive_within_a_bound():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "ansible.cfg")
    options = ssh_options(cfg["ssh_connection"]["ssh_args"])
    assert options["ControlPersist"]  # the persistent master is why keepalives matter
    interval, count = int(options["ServerAliveInterval"]), int(options["ServerAliveCountMax"])
    assert 0 < interval * count <= BOUND_S


def test_ssh_options_reads_each_o_pair():
    assert ssh_options("-o A=1 -C -o B=x=y") == {"A": "1", "B": "x=y"}
