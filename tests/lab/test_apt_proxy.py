"""The apt_proxy role: apt-cacher-ng for guests that cannot reach the archive (root only).

The module makes a network namespace of its own, kvmnl-aptt, with a bridge holding
198.19.9.1/24 (a lab address the guests would reach the hypervisor at), and runs the role
through a tiny playbook written to a temporary folder (the role is found through the
repository's ansible.cfg), with apt_proxy_state_dir in a temporary folder the proxy's user
(apt-cacher-ng, the role's default) can reach:

1. a guest-like GET of the bookworm Release file through the proxy, from inside the namespace,
   returns the Release file; apt-cacher-ng fetches Release files again on every request (it
   revalidates the archive's root index), so the cache is shown with a file the Release names
   by hash: its second GET is served from the cache (apt-cacher.log has one line for the
   download, "I", and two for the answers, "O");
2. a second run of the role reports changed=0;
3. nothing listens on apt_proxy_port in the host's own namespace on a non-loopback address,
   and the role's processes listen there on 127.0.0.1 only;
4. state absent stops both processes (no PID of the PID files runs any more) and nothing
   listens on 198.19.9.1:<port> in the namespace;
5. an address the namespace does not have, or apt_proxy_user root, fails before anything
   changes, naming the variable;
6. the proxy serves the Debian archive only: a GET for another host and a CONNECT to one are
   refused (HTTP 403) without a download, and apt-cacher-ng runs as apt-cacher-ng, not root.

The namespace, and any process the role left running (stopped by the PIDs in its PID files), are
removed at the end, also when a test fails. apt-cacher-ng's package must be installable (the
role installs it); the role fetches from deb.debian.org.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, namespaces, playbook, process_running, recap, role_spec, sh

ROLE = REPO / "roles" / "apt_proxy"
NETNS = "kvmnl-aptt"
ADDRESS = "198.19.9.1"
PORT = 3142
LOOPBACK_PORT = 3149  # not the default, which a lab proxy on this machine may hold
ARCHIVE = "http://deb.debian.org/debian"
RELEASE_URL = f"{ARCHIVE}/dists/bookworm/Release"


# --- the role's public API: defaults, argument spec and README agree -------------------------


def spec_options() -> dict:
    return role_spec(ROLE)["options"]


def test_every_default_is_in_the_argument_spec_with_its_value():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    options = spec_options()
    # apt_proxy_address is required (no default); the state folder's default is templated.
    assert set(options) - set(defaults) == {"apt_proxy_address"}
    assert set(defaults) <= set(options)
    for name, value in defaults.items():
        assert name.startswith("apt_proxy_"), name
        assert options[name].get("description"), name
        assert options[name].get("default") == value, name


def test_readme_names_every_variable():
    readme = (ROLE / "README.md").read_text()
    for name in spec_options():
        assert f"`{name}`" in readme, name


# --- applied for real in a namespace of the test's own ---------------------------------------


def pids(state_dir: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state_dir / "run").glob("*.pid")
            if p.read_text().strip().isdigit()}


def stop_leftovers(state_dir: Path) -> None:
    """Stop what the role left running for this state folder, by PID, checking the command line."""
    for pid in pids(state_dir).values():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(state_dir).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not process_running(pid):
                    break
                time.sleep(0.1)


def write_play(folder: Path, state_dir: Path, address: str = ADDRESS, **extra) -> Path:
    play = folder / "apt_proxy.yml"
    play.write_text(yaml.safe_dump([{
        "name": "Caching apt proxy for the test's namespace",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{"role": "apt_proxy", "vars": {
            "apt_proxy_address": address,
            "apt_proxy_port": PORT,
            "apt_proxy_netns": NETNS,
            "apt_proxy_loopback_port": LOOPBACK_PORT,
            "apt_proxy_state_dir": str(state_dir),
            **extra,
        }}],
    }], sort_keys=False))
    return play


def run_role(play: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    started = time.monotonic()
    done = playbook(str(play), *args, timeout=600)
    print(f"apt_proxy {' '.join(args) or 'started'}: {time.monotonic() - started:.1f} s")
    return done, done.stdout + done.stderr


def fetch(url: str) -> bytes:
    """GET url through the proxy from inside the namespace, as apt does (a plain proxy GET)."""
    script = (
        "import sys, urllib.request\n"
        "opener = urllib.request.build_opener(urllib.request.ProxyHandler({'http': sys.argv[2]}))\n"
        "request = urllib.request.Request(sys.argv[1],"
        " headers={'User-Agent': 'Debian APT-HTTP/1.3 (2.6.1)'})\n"
        "with opener.open(request, timeout=30) as answer:\n"
        "    sys.stdout.buffer.write(answer.read())\n")
    done = subprocess.run(
        ["ip", "netns", "exec", NETNS, sys.executable, "-c", script, url,
         f"http://{ADDRESS}:{PORT}"], capture_output=True, timeout=60)
    assert done.returncode == 0, f"GET {url} through the proxy failed: {done.stderr.decode()}"
    return done.stdout


def status_of(method: str, target: str) -> int:
    """The proxy's HTTP status for ``method target`` (a proxied GET of a URL, or a CONNECT to
    host:port), asked from inside the namespace; only the proxy's address is contacted."""
    script = (
        "import http.client, sys\n"
        "conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=30)\n"
        "conn.putrequest(sys.argv[3], sys.argv[4], skip_host=True, skip_accept_encoding=True)\n"
        "conn.putheader('Host', sys.argv[4].split('/')[2] if '//' in sys.argv[4]"
        " else sys.argv[4])\n"
        "conn.endheaders()\n"
        "print(conn.getresponse().status)\n")
    done = subprocess.run(
        ["ip", "netns", "exec", NETNS, sys.executable, "-c", script, ADDRESS, str(PORT),
         method, target], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{method} {target} through the proxy: {done.stderr}"
    return int(done.stdout)


def listeners(netns: str | None = None) -> list[tuple[str, int, str]]:
    """(address, port, process column) of every listening TCP socket, from ss -ltnpH."""
    argv = ["ss", "-ltnpH"] if netns is None else ["ip", "netns", "exec", netns, "ss", "-ltnpH"]
    found = []
    for line in sh(*argv).stdout.splitlines():
        fields = line.split()
        address, _, port = fields[3].rpartition(":")
        found.append((address.strip("[]"), int(port), " ".join(fields[5:])))
    return found


def log_lines(state_dir: Path, path: str) -> list[str]:
    """Kinds of the apt-cacher.log lines for path: I (downloaded) and O (answered), in order."""
    log = state_dir / "log" / "apt-cacher.log"
    text = log.read_text() if log.exists() else ""
    return [line.split("|")[1] for line in text.splitlines() if line.endswith(f"|{path}")]


@pytest.fixture(scope="module")
def lab(root_only, tmp_path_factory):
    """The namespace with 198.19.9.1/24 on a bridge, and the state folder; removed at the end.
    The state folder is outside pytest's (mode 0700), so that apt-cacher-ng's user reaches it."""
    folder = Path(tempfile.mkdtemp(prefix="kvmnetlab-apt-proxy-", dir="/var/tmp"))
    folder.chmod(0o755)
    state_dir = folder / "state"
    if NETNS in namespaces():
        sh("ip", "netns", "del", NETNS)
    sh("ip", "netns", "add", NETNS)
    try:
        sh("ip", "-n", NETNS, "link", "set", "lo", "up")
        sh("ip", "-n", NETNS, "link", "add", "aptt-br", "type", "bridge")
        sh("ip", "-n", NETNS, "addr", "add", f"{ADDRESS}/24", "dev", "aptt-br")
        sh("ip", "-n", NETNS, "link", "set", "aptt-br", "up")
        yield folder, state_dir
    finally:
        stop_leftovers(state_dir)
        sh("ip", "netns", "del", NETNS, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def started(lab):
    folder, state_dir = lab
    play = write_play(folder, state_dir)
    done, out = run_role(play)
    assert done.returncode == 0, out[-6000:]
    assert set(pids(state_dir)) == {"apt-cacher-ng", "relay"}
    return play, state_dir, out


@pytest.mark.lab  # a network namespace of its own, as root
def test_guest_gets_the_release_file_and_a_second_get_comes_from_the_cache(started):
    _, state_dir, _ = started
    release = fetch(RELEASE_URL).decode()
    assert "Codename: bookworm" in release.splitlines()
    # cached under the repository's name (Remap-debrep), not the host the guest named
    assert (state_dir / "cache" / "debrep/dists/bookworm/Release").is_file()
    # A file the Release names by its hash never changes, so apt-cacher-ng serves it from the
    # cache: main/binary-amd64/Release, a few hundred bytes.
    match = re.search(r"^ ([0-9a-f]{64}) +\d+ main/binary-amd64/Release$",
                      release.split("\nSHA256:\n", 1)[1], re.MULTILINE)
    assert match, "the Release file lists no SHA256 for main/binary-amd64/Release"
    path = f"debrep/dists/bookworm/main/binary-amd64/by-hash/SHA256/{match[1]}"
    url = f"{ARCHIVE}/{path.removeprefix('debrep/')}"
    first, second = fetch(url), fetch(url)
    assert first == second and hashlib.sha256(first).hexdigest() == match[1]
    assert (state_dir / "cache" / path).read_bytes() == first
    for _ in range(50):  # apt-cacher-ng writes a log line once its client has gone
        if log_lines(state_dir, path).count("O") >= 2:
            break
        time.sleep(0.1)
    assert log_lines(state_dir, path) == ["I", "O", "O"], (
        "the second GET was not served from the cache: "
        + (state_dir / "log" / "apt-cacher.log").read_text()[-2000:])
    # The relay hands apt-cacher-ng the client's address (in.acng's X-Original-Source).
    log = (state_dir / "log" / "apt-cacher.log").read_text()
    assert f"|{ADDRESS}|{path}" in log


@pytest.mark.lab  # a network namespace of its own, as root
@pytest.mark.parametrize(("method", "target"), [
    ("GET", "http://example.invalid/debian/dists/bookworm/Release"),
    ("GET", "http://deb.debian.org.example.invalid/debian/dists/bookworm/Release"),
    ("CONNECT", "example.invalid:443"),
])
def test_the_proxy_serves_the_debian_archive_only(started, method, target):
    """A host the guest names is never contacted: ForceManaged refuses what no Remap- line
    maps, and CONNECT goes only where apt_proxy_passthrough_pattern lets it (Debian's hosts).
    The hosts are in .invalid, so even a proxy that tried could reach nothing."""
    _, state_dir, _ = started
    assert status_of(method, target) == 403
    host = target.split("/")[2] if "//" in target else target.split(":")[0]
    assert not (state_dir / "cache" / host).exists()
    log = state_dir / "log" / "apt-cacher.log"
    lines = [line.split("|") for line in (log.read_text() if log.exists() else "").splitlines()]
    # a refusal may be logged, never a download (I) from that host
    assert not [line for line in lines if line[1] == "I" and host in line[-1]], lines


@pytest.mark.lab  # a network namespace of its own, as root
def test_apt_cacher_ng_runs_as_its_own_user(started):
    _, state_dir, _ = started
    pid = pids(state_dir)["apt-cacher-ng"]
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert {int(uid) for uid in uids} == {pwd.getpwnam("apt-cacher-ng").pw_uid}


@pytest.mark.lab  # a network namespace of its own, as root
def test_second_run_changes_nothing(started):
    play, state_dir, _ = started
    before = pids(state_dir)
    done, out = run_role(play)
    assert done.returncode == 0, out[-6000:]
    assert recap(out)["localhost"]["changed"] == 0, out[-6000:]
    assert pids(state_dir) == before


@pytest.mark.lab  # a network namespace of its own, as root
def test_nothing_new_listens_in_the_host_namespace(started):
    _, state_dir, _ = started
    ours = pids(state_dir)
    assert all(process_running(pid) for pid in ours.values()), ours
    mine = []
    for address, port, process in listeners():
        loopback = address.startswith("127.") or address == "::1"
        assert loopback or port != PORT, f"{address}:{port} listens in the host's namespace"
        for name, pid in ours.items():
            if f"pid={pid}," in process:
                mine.append((name, address, port))
    # apt-cacher-ng's own TCP listener (it cannot turn it off) is on loopback, and only there.
    assert mine == [("apt-cacher-ng", "127.0.0.1", LOOPBACK_PORT)]
    inside = [(a, p) for a, p, _ in listeners(NETNS)]
    assert (ADDRESS, PORT) in inside


@pytest.mark.lab  # a network namespace of its own, as root
def test_absent_stops_both_processes(started):
    play, state_dir, _ = started
    before = pids(state_dir)
    done, out = run_role(play, "-e", "apt_proxy_state=absent")
    assert done.returncode == 0, out[-6000:]
    assert not [name for name, pid in before.items() if process_running(pid)], before
    assert pids(state_dir) == {}
    assert not [(a, p) for a, p, _ in listeners(NETNS) if p == PORT]


@pytest.mark.lab  # a network namespace of its own, as root
@pytest.mark.parametrize(("setting", "expected"), [
    ({"address": "10.0.0.1"}, "apt_proxy_address: 10.0.0.1 is not an address of network namespace"),
    ({"apt_proxy_user": "root"}, "apt_proxy_user ('root') must be a user name other than root"),
], ids=["address", "root"])
def test_a_wrong_setting_fails_before_anything_changes(lab, setting, expected):
    folder, _ = lab
    name = next(iter(setting))
    state_dir = folder / f"bad-state-{name}"
    (folder / f"bad-{name}").mkdir()
    play = write_play(folder / f"bad-{name}", state_dir, **setting)
    done, out = run_role(play)
    assert done.returncode != 0
    assert expected in " ".join(out.split())
    assert recap(out)["localhost"]["changed"] == 0
    assert not state_dir.exists()
