"""Counter parsers (/proc, /sys, ethtool) against real captures.

Fixtures and how they were made: tests/fixtures/procfs/CAPTURE.md and
tests/fixtures/ethtool/CAPTURE.md. Expected values are recomputed from the text with
plain splitting, independently of the parsers.
"""

from __future__ import annotations

import pytest

from collectors.parsers import (
    ethtool_features,
    ethtool_info,
    ethtool_stats,
    proc_interrupts,
    proc_net_dev,
    proc_stat,
    proc_task_stat,
    sys_net_statistics,
)
from kvmnetlab.errors import ParseError
from tests.helpers import TESTS

FIX = TESTS / "fixtures"
PROCFS = FIX / "procfs"
ETHTOOL = FIX / "ethtool"

# (parser module, fixture, number of header lines before the first data line)
CASES = [
    (proc_stat, PROCFS / "stat.txt", 0),
    (proc_interrupts, PROCFS / "interrupts.txt", 1),
    (proc_net_dev, PROCFS / "net_dev.txt", 2),
    (sys_net_statistics, PROCFS / "sys_statistics.txt", 0),
    (proc_task_stat, PROCFS / "task_stat.txt", 0),
    (ethtool_info, ETHTOOL / "veth_i.txt", 0),
    (ethtool_info, ETHTOOL / "virtio_i.txt", 0),
    (ethtool_features, ETHTOOL / "veth_k.txt", 1),
    (ethtool_features, ETHTOOL / "virtio_k.txt", 1),
    (ethtool_stats, ETHTOOL / "veth_S.txt", 1),
    (ethtool_stats, ETHTOOL / "virtio_S.txt", 1),
]
IDS = [f"{mod.__name__.rsplit('.', 1)[1]}-{path.name}" for mod, path, _ in CASES]


@pytest.mark.parametrize(("parser", "path", "header"), CASES, ids=IDS)
def test_cut_mid_line_names_last_line(tmp_path, parser, path, header):
    text = path.read_text()
    cut = tmp_path / path.name
    cut.write_text(text[: len(text) - 4])  # lose the newline and 3 characters
    with pytest.raises(ParseError) as err:
        parser.parse(cut)
    assert err.value.path == str(cut)
    assert err.value.line == len(cut.read_text().splitlines())
    assert f"{cut}:{err.value.line}" in str(err.value)


@pytest.mark.parametrize(("parser", "path", "header"), CASES, ids=IDS)
def test_garbage_line_names_line(tmp_path, parser, path, header):
    lines = path.read_text().splitlines()
    lines.insert(header + 1, "%%% garbage %%%")
    bad = tmp_path / path.name
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        parser.parse(bad)
    assert err.value.line == header + 2
    assert f"{bad}:{header + 2}" in str(err.value)


@pytest.mark.parametrize(("parser", "path", "header"), CASES, ids=IDS)
def test_empty_file(tmp_path, parser, path, header):
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ParseError, match="empty"):
        parser.parse(empty)


# ------------------------------------------------------------------ /proc/stat


def test_proc_stat_values():
    result = proc_stat.parse(PROCFS / "stat.txt")
    table = {line.split()[0]: line.split()[1:] for line in (PROCFS / "stat.txt").open()}
    cpu_keys = [k for k in table if k.startswith("cpu")]
    assert [c["cpu"] for c in result.cpus] == [
        "all" if k == "cpu" else int(k[3:]) for k in cpu_keys
    ]
    for cpu, key in zip(result.cpus, cpu_keys, strict=True):
        assert [cpu[f] for f in proc_stat.CPU_FIELDS] == [int(v) for v in table[key]]
    # the aggregate line is the sum of the per-CPU lines, column by column, up to
    # one tick per CPU (the kernel sums nanoseconds, then converts to ticks)
    per_cpu = [c for c in result.cpus if c["cpu"] != "all"]
    for f in proc_stat.CPU_FIELDS:
        assert abs(result.cpus[0][f] - sum(c[f] for c in per_cpu)) <= len(per_cpu), f
    assert result.interrupts_total == int(table["intr"][0])
    assert result.context_switches == int(table["ctxt"][0])
    assert result.boot_time_s == int(table["btime"][0])
    assert result.softirqs_total == int(table["softirq"][0]) == sum(result.softirqs.values())
    assert result.softirqs["NET_RX"] == int(table["softirq"][4])


def test_proc_stat_missing_line_is_truncated(tmp_path):
    lines = (PROCFS / "stat.txt").read_text().splitlines()
    cut = tmp_path / "stat.txt"
    cut.write_text("\n".join(line for line in lines if not line.startswith("ctxt")) + "\n")
    with pytest.raises(ParseError, match="ctxt"):
        proc_stat.parse(cut)


# ------------------------------------------------------------------ /proc/interrupts


def test_interrupts_values():
    lines = (PROCFS / "interrupts.txt").read_text().splitlines()
    result = proc_interrupts.parse(PROCFS / "interrupts.txt")
    ncpu = len(lines[0].split())
    assert result.cpus == list(range(ncpu))
    assert len(result.irqs) == len(lines) - 1
    for irq, line in zip(result.irqs, lines[1:], strict=True):
        words = line.split()
        assert irq["irq"] == words[0].rstrip(":")
        if irq["irq"] in ("ERR", "MIS"):
            assert irq["counts"] is None
            assert irq["total"] == int(words[1])
        else:
            assert irq["counts"] == [int(w) for w in words[1 : 1 + ncpu]]
            assert irq["description"] == " ".join(words[1 + ncpu :])
    loc = next(i for i in result.irqs if i["irq"] == "LOC")
    assert loc["kind"] == "arch"
    assert loc["description"] == "Local timer interrupts"
    virtio_rx = [i for i in result.irqs if (i["actions"] or "").endswith("-rx")]
    assert virtio_rx, "the capture machine's virtio NIC has an rx vector"
    assert virtio_rx[0]["trigger"] == "edge"
    assert virtio_rx[0]["chip"].startswith("PCI-MSI")
    rows = result.rows()
    assert sum(r["count"] for r in rows) == sum(i["total"] for i in result.irqs)


def test_interrupts_short_row_names_line(tmp_path):
    lines = (PROCFS / "interrupts.txt").read_text().splitlines()
    words = lines[3].split()
    lines[3] = " ".join(words[:2])  # drops the second CPU's count and the name
    bad = tmp_path / "interrupts.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        proc_interrupts.parse(bad)
    assert err.value.line == 4


def test_interrupts_cut_at_line_boundary_among_devices(tmp_path):
    lines = (PROCFS / "interrupts.txt").read_text().splitlines()
    last_device = max(i for i, line in enumerate(lines) if line.split()[0][:-1].isdigit())
    cut = tmp_path / "interrupts.txt"
    cut.write_text("\n".join(lines[: last_device + 1]) + "\n")
    with pytest.raises(ParseError, match="truncated"):
        proc_interrupts.parse(cut)


# ------------------------------------------------------------------ /proc/net/dev and /sys


def test_net_dev_values():
    result = proc_net_dev.parse(PROCFS / "net_dev.txt")
    data = (PROCFS / "net_dev.txt").read_text().splitlines()[2:]
    assert [r["interface"] for r in result] == [line.split(":")[0].strip() for line in data]
    for row, line in zip(result, data, strict=True):
        numbers = [int(v) for v in line.split(":")[1].split()]
        assert [row[c] for c in proc_net_dev.COLUMNS] == numbers
    veth = next(r for r in result if r["interface"] == "kvfx-va")
    assert veth["rx_packets"] > 0 and veth["tx_bytes"] > 0


def test_sys_statistics_values_agree_with_net_dev():
    stats = sys_net_statistics.parse(PROCFS / "sys_statistics.txt")
    lines = (PROCFS / "sys_statistics.txt").read_text().splitlines()
    assert stats.interface == "kvfx-va"
    assert stats.counters == {
        line.split("/")[-1].split(":")[0]: int(line.rsplit(":", 1)[1]) for line in lines
    }
    assert len(stats.rows()) == len(lines)
    # captured right after /proc/net/dev, with no traffic in between
    dev = next(r for r in proc_net_dev.parse(PROCFS / "net_dev.txt") if r["interface"] == "kvfx-va")
    for name in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes"):
        assert stats.counters[name] == dev[name]


def test_sys_statistics_two_interfaces_refused(tmp_path):
    text = (PROCFS / "sys_statistics.txt").read_text()
    lines = text.splitlines()
    lines[5] = lines[5].replace("/kvfx-va/", "/other0/")
    bad = tmp_path / "s.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        sys_net_statistics.parse(bad)
    assert err.value.line == 6


# ------------------------------------------------------------------ /proc/PID/task/*/stat


def test_task_stat_comm_with_spaces_and_parentheses():
    lines = (PROCFS / "task_stat.txt").read_text().splitlines()
    threads = proc_task_stat.parse(PROCFS / "task_stat.txt")
    assert len(threads) == len(lines)
    comms = {t["comm"] for t in threads}
    assert {"kvfx (main) x", "a) (b", "vhost-4242", "c d)"} == comms
    for t, line in zip(threads, lines, strict=True):
        after = line[line.rindex(")") + 2 :].split()  # field 3 onwards
        assert t["tid"] == int(line.split()[0])
        assert t["utime_ticks"] == int(after[14 - 3])
        assert t["stime_ticks"] == int(after[15 - 3])
        assert t["num_threads"] == len(lines)
    # the thread that spun longest used the most CPU (0.6 s vs 0.3 s and 0.1 s)
    busiest = max(threads, key=lambda t: t["utime_ticks"] + t["stime_ticks"])
    assert busiest["comm"] == "vhost-4242"


def test_task_stat_short_line(tmp_path):
    lines = (PROCFS / "task_stat.txt").read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:20])
    bad = tmp_path / "t.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="fields") as err:
        proc_task_stat.parse(bad)
    assert err.value.line == 2


# ------------------------------------------------------------------ ethtool


@pytest.mark.parametrize(("name", "driver"), [("veth", "veth"), ("virtio", "virtio_net")])
def test_ethtool_info(name, driver):
    info = ethtool_info.parse(ETHTOOL / f"{name}_i.txt")
    assert info["driver"] == driver
    for line in (ETHTOOL / f"{name}_i.txt").read_text().splitlines():
        key, value = line.split(":", 1)
        got = info[key.replace("-", "_")]
        assert got == (value.strip() == "yes" if key.startswith("supports-") else value.strip())


@pytest.mark.parametrize("name", ["veth", "virtio"])
def test_ethtool_features(name):
    lines = (ETHTOOL / f"{name}_k.txt").read_text().splitlines()
    result = ethtool_features.parse(ETHTOOL / f"{name}_k.txt")
    assert result.interface == lines[0].split()[-1].rstrip(":")
    assert len(result.features) == len(lines) - 1
    assert sum(f["enabled"] for f in result.features) == sum(
        1 for line in lines[1:] if line.split(": ")[1].startswith("on")
    )
    assert sum(f["fixed"] for f in result.features) == sum("[fixed]" in x for x in lines)
    assert sum(f["parent"] is not None for f in result.features) == sum(
        x.startswith("\t") for x in lines
    )
    sub = next(f for f in result.features if f["feature"] == "tx-checksum-ipv4")
    assert sub["parent"] == "tx-checksumming"


def test_ethtool_features_requested(tmp_path):
    """Edited copy: '[requested on]' appears only when a change was refused."""
    lines = (ETHTOOL / "veth_k.txt").read_text().splitlines()
    idx = next(i for i, x in enumerate(lines) if x == "generic-receive-offload: off")
    lines[idx] += " [requested on]"
    edited = tmp_path / "k.txt"
    edited.write_text("\n".join(lines) + "\n")
    gro = next(
        f for f in ethtool_features.parse(edited).features if f["feature"].startswith("generic-rec")
    )
    assert gro["enabled"] is False and gro["requested"] is True


@pytest.mark.parametrize("name", ["veth", "virtio"])
def test_ethtool_stats(name):
    lines = (ETHTOOL / f"{name}_S.txt").read_text().splitlines()
    stats = ethtool_stats.parse(ETHTOOL / f"{name}_S.txt")
    assert list(stats) == [x.split(":")[0].strip() for x in lines[1:]]
    assert list(stats.values()) == [int(x.split(":")[1]) for x in lines[1:]]


def test_virtio_stats_kicks_are_per_queue_sums():
    stats = ethtool_stats.parse(ETHTOOL / "virtio_S.txt")
    for d in ("rx", "tx"):
        queues = [
            v
            for k, v in stats.items()
            if k.startswith(d) and k[2:3].isdigit() and k.endswith("_kicks")
        ]
        assert queues
        assert stats[f"{d}_kicks"] == sum(queues)
