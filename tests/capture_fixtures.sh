#!/usr/bin/env bash
# Re-capture the parser fixtures under tests/fixtures/ from the real tools on this machine.
#
# Usage (root):  tests/capture_fixtures.sh [section ...]
#   sections: ping procfs ethtool trafgen fping sockperf   (default: all of them)
#
# Every namespace and link it creates is named kvfx-*, every address is in
# 198.19.250.0/24 (RFC 2544 benchmarking range); all of them are removed on exit.
# The tools come from Debian 12: iputils-ping, iproute2, nftables, ethtool,
# netsniff-ng, fping, sockperf.
# After a run, update the date, versions and kernel in each CAPTURE.md
# (the script prints them) and re-run the parser tests.
set -Eeuo pipefail
trap 'echo "capture_fixtures.sh:$LINENO: failed: $BASH_COMMAND" >&2' ERR

if [[ $(id -u) -ne 0 ]]; then
    echo "capture_fixtures.sh: must run as root (network namespaces)" >&2
    exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
# KVMNETLAB_FIXTURES_OUT writes elsewhere (to compare a fresh capture with the committed one)
fx="${KVMNETLAB_FIXTURES_OUT:-$here/fixtures}"
created_ns=()
started_pids=()

cleanup() {
    local pid ns
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ns in "${created_ns[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT

mkns() {
    ip netns add "$1"
    created_ns+=("$1")
    ip -n "$1" link set lo up
}

# stop a process this script started, by its PID, and forget it
stop_pid() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${!started_pids[@]}"; do
        [[ ${started_pids[$i]} == "$pid" ]] && unset 'started_pids[i]'
    done
    return 0
}

delns() {
    local ns=$1 i
    ip netns del "$ns"
    for i in "${!created_ns[@]}"; do
        [[ ${created_ns[$i]} == "$ns" ]] && unset 'created_ns[i]'
    done
    return 0
}

# kvfx-a (198.19.250.1, kvfx-va) <-> veth <-> kvfx-b (198.19.250.2, kvfx-vb)
pair_up() {
    mkns kvfx-a
    mkns kvfx-b
    ip link add kvfx-va netns kvfx-a type veth peer name kvfx-vb netns kvfx-b
    ip -n kvfx-a addr add 198.19.250.1/24 dev kvfx-va
    ip -n kvfx-b addr add 198.19.250.2/24 dev kvfx-vb
    ip -n kvfx-a link set kvfx-va up
    ip -n kvfx-b link set kvfx-vb up
    # first ARP resolution out of the way, so the captures start clean
    local try
    for try in 1 2 3 4 5; do
        ip netns exec kvfx-a ping -n -c 1 -W 1 198.19.250.2 >/dev/null && return 0
        sleep 0.5
    done
    echo "capture_fixtures.sh: 198.19.250.2 does not answer over the veth pair" >&2
    return 1
}

pair_down() {
    delns kvfx-a
    delns kvfx-b
}

env_report() {
    echo "date (UTC):  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel:      $(uname -r)"
}

# ---------------------------------------------------------------- ping
capture_ping() {
    local d="$fx/ping"
    mkdir -p "$d"
    pair_up

    # 1. clean: 200 probes at 10 ms over the veth pair
    ip netns exec kvfx-a ping -D -O -n -c 200 -i 0.01 -s 56 198.19.250.2 >"$d/clean.txt"

    # 2. unanswered: kvfx-b drops the echo requests with icmp_seq 4 and 7-9 (nftables)
    ip netns exec kvfx-b nft -f - <<'EOF'
table inet kvfx {
  chain in {
    type filter hook input priority 0; policy accept;
    icmp type echo-request icmp sequence { 4, 7-9 } drop
  }
}
EOF
    ip netns exec kvfx-a ping -D -O -n -c 12 -i 0.05 -W 0.2 -s 56 198.19.250.2 \
        >"$d/unanswered.txt"
    ip netns exec kvfx-b nft delete table inet kvfx

    # 3. unreachable: an address of the subnet where no host answers ARP (exit status 1)
    ip netns exec kvfx-a ping -D -O -n -c 4 -i 0.5 -s 56 198.19.250.9 \
        >"$d/unreachable.txt" || true
    pair_down

    # 4. duplicates: two namespaces share one IP and one MAC behind a bridge that
    #    floods every frame (ageing_time 0), so each echo request is answered twice.
    mkns kvfx-dsw
    ip -n kvfx-dsw link add kvfx-br type bridge ageing_time 0
    ip -n kvfx-dsw link set kvfx-br up
    local i ns
    for i in 1 2 3; do
        ns=kvfx-d$i
        mkns "$ns"
        ip link add "kvfx-p$i" netns kvfx-dsw type veth peer name "kvfx-e$i" netns "$ns"
        ip -n kvfx-dsw link set "kvfx-p$i" master kvfx-br up
    done
    ip -n kvfx-d2 link set kvfx-e2 address 02:00:c6:13:fa:12
    ip -n kvfx-d3 link set kvfx-e3 address 02:00:c6:13:fa:12
    ip -n kvfx-d1 addr add 198.19.250.17/28 dev kvfx-e1
    ip -n kvfx-d2 addr add 198.19.250.18/28 dev kvfx-e2
    ip -n kvfx-d3 addr add 198.19.250.18/28 dev kvfx-e3
    for i in 1 2 3; do ip -n "kvfx-d$i" link set "kvfx-e$i" up; done
    sleep 1
    ip netns exec kvfx-d1 ping -D -O -n -c 20 -i 0.05 -s 56 198.19.250.18 >"$d/dup.txt"
    for ns in kvfx-d1 kvfx-d2 kvfx-d3 kvfx-dsw; do delns "$ns"; done

    # 5. truncated: the clean capture cut in the middle of its 101st line (no summary)
    head -c "$(($(head -n 100 "$d/clean.txt" | wc -c) + 30))" "$d/clean.txt" >"$d/truncated.txt"
    echo "ping:        $(ping -V | head -n 1)"
    env_report
}

# ---------------------------------------------------------------- procfs / sysfs
capture_procfs() {
    local d="$fx/procfs"
    mkdir -p "$d"
    pair_up
    # some traffic so that the counters are not all zero
    ip netns exec kvfx-a ping -n -q -c 500 -i 0.002 -s 1000 198.19.250.2 >/dev/null
    cat /proc/stat >"$d/stat.txt"
    cat /proc/interrupts >"$d/interrupts.txt"
    ip netns exec kvfx-a cat /proc/net/dev >"$d/net_dev.txt"
    ip netns exec kvfx-a grep -r . /sys/class/net/kvfx-va/statistics/ >"$d/sys_statistics.txt"
    pair_down

    # a process whose thread names carry spaces and parentheses, like "vhost-1234"
    # would not, but a guest-chosen or user-chosen comm can
    python3 - <<'PY' &
import threading, time
def name(tid, comm):
    with open(f"/proc/self/task/{tid}/comm", "w") as f:
        f.write(comm)
def work(comm, spin):
    name(threading.get_native_id(), comm)
    end = time.monotonic() + spin
    while time.monotonic() < end:
        pass
    time.sleep(60)
name(threading.get_native_id(), "kvfx (main) x")
for comm, spin in (("a) (b", 0.3), ("vhost-4242", 0.6), ("c d)", 0.1)):
    threading.Thread(target=work, args=(comm, spin), daemon=True).start()
time.sleep(60)
PY
    local pid=$!
    started_pids+=("$pid")
    sleep 1.5
    for f in /proc/"$pid"/task/*/stat; do cat "$f"; done >"$d/task_stat.txt"
    echo "task_stat.txt: pid $pid, USER_HZ $(getconf CLK_TCK)"
    stop_pid "$pid"
    env_report
}

# ---------------------------------------------------------------- ethtool
capture_ethtool() {
    local d="$fx/ethtool"
    mkdir -p "$d"
    pair_up
    ip netns exec kvfx-a ping -n -q -c 200 -i 0.002 198.19.250.2 >/dev/null
    ip netns exec kvfx-a ethtool -i kvfx-va >"$d/veth_i.txt"
    ip netns exec kvfx-a ethtool -k kvfx-va >"$d/veth_k.txt"
    ip netns exec kvfx-a ethtool -S kvfx-va >"$d/veth_S.txt"
    pair_down
    # The machine's own NIC is virtio_net (it is itself a guest): read-only queries.
    local uevent nic
    uevent=$(grep -l '^DRIVER=virtio_net$' /sys/class/net/*/device/uevent 2>/dev/null |
        head -n 1 || true)
    if [[ -n $uevent ]]; then
        nic=$(basename "$(dirname "$(dirname "$uevent")")")
        ethtool -i "$nic" >"$d/virtio_i.txt"
        ethtool -k "$nic" >"$d/virtio_k.txt"
        ethtool -S "$nic" >"$d/virtio_S.txt"
        echo "virtio_net interface: $nic"
    fi
    echo "ethtool:     $(ethtool --version)"
    env_report
}

# ---------------------------------------------------------------- trafgen
capture_trafgen() {
    local d="$fx/trafgen"
    mkdir -p "$d"
    pair_up
    # 60-byte frames (no CRC): Ethernet broadcast, IPv4 198.19.250.1 -> .2, UDP 2012 -> 3000
    cat >"$d/udp60.cfg" <<'CFG'
{
  eth(da=ff:ff:ff:ff:ff:ff, type=0x0800),
  ipv4(saddr=198.19.250.1, daddr=198.19.250.2, ttl=64),
  udp(sport=2012, dport=3000),
  fill(0x00, 18)
}
CFG
    local rx=/sys/class/net/kvfx-vb/statistics/rx_packets before after
    before=$(ip netns exec kvfx-b cat "$rx")
    ip netns exec kvfx-a trafgen -o kvfx-va -n 10000 -b 10000pps -c "$d/udp60.cfg" \
        >"$d/rate.stdout" 2>"$d/rate.stderr"
    after=$(ip netns exec kvfx-b cat "$rx")
    echo "rate: kvfx-vb rx_packets $before -> $after"
    before=$after
    ip netns exec kvfx-a trafgen -o kvfx-va -n 200000 -c "$d/udp60.cfg" \
        >"$d/burst.stdout" 2>"$d/burst.stderr"
    after=$(ip netns exec kvfx-b cat "$rx")
    echo "burst: kvfx-vb rx_packets $before -> $after"
    pair_down
    echo "trafgen:     $(trafgen -v | sed -n 1p)"
    env_report
}

# ---------------------------------------------------------------- fping
capture_fping() {
    local d="$fx/fping"
    mkdir -p "$d"
    pair_up
    # 1. one answering host, 20 probes 20 ms apart
    # (exit status 1 if a probe got lost on a busy machine: still real output)
    ip netns exec kvfx-a fping -C 20 -p 20 198.19.250.2 >"$d/clean.stdout" \
        2>"$d/clean.stderr" || [[ $? -eq 1 ]]
    # 2. plus an address nobody holds: ARP fails, ICMP Host Unreachable, '-' samples
    #    (fping exits 1 when a host is unreachable)
    ip netns exec kvfx-a fping -C 4 -p 1000 198.19.250.2 198.19.250.9 \
        >"$d/unreachable.stdout" 2>"$d/unreachable.stderr" || true
    pair_down
    echo "fping:       $(fping -v | head -n 1)"
    env_report
}

# ---------------------------------------------------------------- sockperf
capture_sockperf() {
    local d="$fx/sockperf"
    mkdir -p "$d"
    pair_up
    ip netns exec kvfx-b sockperf server -i 198.19.250.2 -p 11111 >"$d/server.stdout" 2>&1 &
    local pid=$!
    started_pids+=("$pid")
    local try
    for try in $(seq 50); do  # wait (up to 5 s) until the server's UDP socket is bound
        ip netns exec kvfx-b ss -Huln 'sport = :11111' | grep -q . && break
        sleep 0.1
    done
    ip netns exec kvfx-a sockperf ping-pong -i 198.19.250.2 -p 11111 -t 3 --full-rtt \
        >"$d/pingpong_full_rtt.stdout" 2>"$d/pingpong_full_rtt.stderr"
    ip netns exec kvfx-a sockperf ping-pong -i 198.19.250.2 -p 11111 -t 2 \
        >"$d/pingpong_latency.stdout" 2>"$d/pingpong_latency.stderr"
    stop_pid "$pid"
    pair_down
    echo "sockperf:    $(sockperf --version | head -n 1)"
    env_report
}

sections=("$@")
if [[ ${#sections[@]} -eq 0 ]]; then
    sections=(ping procfs ethtool trafgen fping sockperf)
fi
for s in "${sections[@]}"; do
    echo "== $s"
    "capture_$s"
done
