"""The elvis_kernel role on a tiny fake kernel tree (fast; no real kernel is built).

The fake tree is a git repository in tmp_path with a Makefile that mimics the
kernel's targets (defconfig, olddefconfig dropping options no Kconfig declares,
bzImage, kernelrelease) and a stand-in for scripts/kconfig/merge_config.sh, so the
role's git-source path, patch checks, config verification, cache and check mode
run for real in seconds. Nothing is installed and the host is never rebooted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO as ROOT
from tests.helpers import extended, local_play, recap

PLAYBOOK = """\
- name: elvis_kernel test
  hosts: localhost
  gather_facts: false
  roles:
    - role: elvis_kernel
  post_tasks:
    - name: Save the facts the role set
      ansible.builtin.copy:
        content: "{{ {'build': elvis_kernel_build | default(none),
                      'applied': elvis_kernel_applied | default(none)} | to_json }}"
        dest: "{{ facts_out }}"
        mode: "0644"
      check_mode: false
      changed_when: false  # the harness's own file; only the role's changes are counted
"""

MAKEFILE = """\
# Fake kernel Makefile: just enough of Kbuild's targets for the role's pipeline.
defconfig:
\tprintf 'CONFIG_FAKE_BASE=y\\n# CONFIG_FAKE_DEBUG is not set\\n' > .config
olddefconfig:
\tawk 'NR == FNR { if ($$1 == "config") known["CONFIG_" $$2] = 1; next } \\
\t     match($$0, /CONFIG_[A-Za-z0-9_]+/) { \\
\t       if (substr($$0, RSTART, RLENGTH) in known) print; next } \\
\t     { print }' Kconfig .config > .config.new && mv .config.new .config
bzImage:
\tmkdir -p arch/x86/boot && cat VERSION .config > arch/x86/boot/bzImage
kernelrelease:
\t@echo "$$(cat VERSION)$(LOCALVERSION)"
.PHONY: defconfig olddefconfig bzImage kernelrelease
"""

MERGE = """\
#!/bin/sh
# Fake merge_config.sh -m BASE FRAGMENT...: the fragment's options replace the base's.
[ "$1" = -m ] && shift
base=$1; shift
tmp=$(mktemp)
cp "$base" "$tmp"
for frag in "$@"; do
  for opt in $(sed -nE 's/^(# )?(CONFIG_[A-Za-z0-9_]+)[= ].*/\\2/p' "$frag"); do
    grep -vE "^(# )?$opt[= ]" "$tmp" > "$tmp.n" || true
    mv "$tmp.n" "$tmp"
  done
  cat "$frag" >> "$tmp"
done
mv "$tmp" .config
"""

KCONFIG = """\
config FAKE_BASE
\tbool "base"
config FAKE_VIRTIO
\tbool "virtio"
menuconfig FAKE_DEBUG
\tbool "debug"
"""

GOOD_PATCH = """\
--- a/greeting.txt
+++ b/greeting.txt
@@ -1 +1,2 @@
 hello
+kvmnetlab marker
"""

BAD_PATCH = """\
--- a/greeting.txt
+++ b/greeting.txt
@@ -1,2 +1,2 @@
 hello
-goodbye
+see you
"""


def _git(tree: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(tree), *args], check=True, env=env,
                          capture_output=True, text=True).stdout.strip()


# the role's stand-in builds: opt-in (KVMNETLAB_EXTENDED=1)
builds = extended("the ELVIS role's builds of a stand-in kernel tree; about 1.5 min in all")


@pytest.fixture(scope="module")
def fake_tree(tmp_path_factory) -> tuple[Path, str]:
    if shutil.which("git") is None or shutil.which("patch") is None:
        pytest.skip("git and patch are needed for the fake kernel tree")
    tree = tmp_path_factory.mktemp("fake-linux")
    (tree / "Makefile").write_text(MAKEFILE)
    (tree / "Kconfig").write_text(KCONFIG)
    (tree / "VERSION").write_text("6.1.0-fake\n")
    (tree / "greeting.txt").write_text("hello\n")
    merge = tree / "scripts" / "kconfig" / "merge_config.sh"
    merge.parent.mkdir(parents=True)
    merge.write_text(MERGE)
    merge.chmod(0o755)
    _git(tree, "init", "-q")
    _git(tree, "add", ".")
    _git(tree, "commit", "-q", "-m", "fake kernel")
    return tree, _git(tree, "rev-parse", "HEAD")


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def run_role(tmp_path: Path, variables: dict, *, check: bool = False, name: str = "run",
             host: str = "localhost"):
    """Run the role on ``host`` (a local connection); return (rc, output, recap counts, facts)."""
    done, facts = local_play(tmp_path, PLAYBOOK.replace("hosts: localhost", f"hosts: {host}"),
                             variables, *(["--check"] if check else []), name=name, host=host,
                             env={"ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-tmp")},
                             timeout=300)
    out = done.stdout + done.stderr
    return done.returncode, out, recap(out).get(host) if "PLAY RECAP" in out else None, facts


def base_vars(tmp_path: Path, tree: Path, commit: str, **over) -> dict:
    fragment = _write(tmp_path / "frag.config", "CONFIG_FAKE_VIRTIO=y\n")
    patch = _write(tmp_path / "0001-marker.patch", GOOD_PATCH)
    variables = {
        "elvis_kernel_mode": "patched",
        "elvis_kernel_install": False,
        "elvis_kernel_source_type": "git",
        "elvis_kernel_source_repo": str(tree),
        "elvis_kernel_source_commit": commit,
        "elvis_kernel_base_config": "make",
        "elvis_kernel_base_config_targets": ["defconfig"],
        "elvis_kernel_config_fragment": fragment,
        "elvis_kernel_patches": [{"path": patch}],
        "elvis_kernel_make_target": "bzImage",
        "elvis_kernel_work_dir": str(tmp_path / "work"),
        "elvis_kernel_build_packages": [],
        "elvis_kernel_progress_interval": 5,
        "elvis_kernel_state_file": str(tmp_path / "state" / "elvis.json"),
    }
    variables.update(over)
    return variables


@builds
def test_build_then_cached_rebuild_and_check_mode_change_nothing(tmp_path, fake_tree):
    tree, commit = fake_tree
    variables = base_vars(tmp_path, tree, commit)
    rc, out, counts, facts = run_role(tmp_path, variables, name="first")
    assert rc == 0, out
    assert counts["changed"] > 0
    build = facts["build"]
    assert build["kernel_release"] == "6.1.0-fake-kvmnetlab"
    image = Path(build["image"]).read_text()
    assert "CONFIG_FAKE_VIRTIO=y" in image
    src = Path(build["dir"]) / "src" / "greeting.txt"
    assert src.read_text() == "hello\nkvmnetlab marker\n"
    log_mtime = Path(build["log"]).stat().st_mtime_ns

    rc, out, counts, facts = run_role(tmp_path, variables, name="second")
    assert rc == 0, out
    assert counts["changed"] == 0, out
    assert facts["build"]["key"] == build["key"]
    assert Path(build["log"]).stat().st_mtime_ns == log_mtime, "the cached build was redone"

    rc, out, counts, facts = run_role(tmp_path, variables, check=True, name="check")
    assert rc == 0, out
    assert counts["changed"] == 0, out
    assert facts["build"]["key"] == build["key"]


@builds
def test_cache_key_follows_every_input(tmp_path, fake_tree):
    tree, commit = fake_tree
    variables = base_vars(tmp_path, tree, commit)
    rc, out, _, first = run_role(tmp_path, variables, name="a")
    assert rc == 0, out
    _write(tmp_path / "frag.config", "CONFIG_FAKE_VIRTIO=y\n# CONFIG_FAKE_DEBUG is not set\n")
    rc, out, counts, second = run_role(tmp_path, variables, name="b")
    assert rc == 0, out
    assert counts["changed"] > 0
    assert second["build"]["key"] != first["build"]["key"]
    fragment_sha = hashlib.sha256((tmp_path / "frag.config").read_bytes()).hexdigest()
    assert second["build"]["inputs"]["config_fragment"] == fragment_sha


def test_patch_that_does_not_apply_is_named_and_nothing_is_built(tmp_path, fake_tree):
    tree, commit = fake_tree
    good = _write(tmp_path / "0001-good.patch", GOOD_PATCH)
    bad = _write(tmp_path / "0002-bad.patch", BAD_PATCH)
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_patches=[
        {"path": good}, {"path": bad, "name": "0002-bad"}])
    rc, out, counts, _ = run_role(tmp_path, variables)
    assert rc != 0
    assert counts["failed"] == 1
    assert "patch 2 of 2 (0002-bad) does not apply" in out, out
    assert not list((tmp_path / "work").glob("*/build.json"))
    assert not list((tmp_path / "work").glob("*/prepared"))
    assert "Start in the background" not in out


def test_checksum_mismatch_of_a_downloaded_patch_is_named(tmp_path, fake_tree):
    tree, commit = fake_tree
    patch = _write(tmp_path / "remote.patch", GOOD_PATCH)
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_patches=[
        {"url": f"file://{patch}", "sha256": "0" * 64, "name": "remote-marker"}])
    rc, out, _, _ = run_role(tmp_path, variables)
    assert rc != 0
    assert re.search(r"patch remote-marker \(file://\S+remote\.patch\):.*checksum", out), out
    assert "Install the build dependencies" not in out
    assert not (tmp_path / "work" / "patches" / ("0" * 64 + ".patch")).exists()


def test_checksum_mismatch_of_a_local_patch_is_named(tmp_path, fake_tree):
    tree, commit = fake_tree
    patch = _write(tmp_path / "0001-local.patch", GOOD_PATCH)
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_patches=[
        {"path": patch, "sha256": "f" * 64}])
    rc, out, _, _ = run_role(tmp_path, variables)
    assert rc != 0
    assert f"patch {patch}: checksum mismatch: expected sha256 {'f' * 64}" in out, out
    assert "Install the build dependencies" not in out


def test_checksum_mismatch_of_the_source_tarball_is_named(tmp_path, fake_tree):
    tree, commit = fake_tree
    tarball = tmp_path / "linux-fake.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(tree.parent), tree.name], check=True)
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_source_type="tarball",
                          elvis_kernel_source_url=f"file://{tarball}",
                          elvis_kernel_source_sha256="1" * 64)
    rc, out, _, _ = run_role(tmp_path, variables)
    assert rc != 0
    assert f"source tarball file://{tarball}:" in out and "checksum" in out, out
    assert "Install the build dependencies" not in out


@builds
def test_tarball_source_builds(tmp_path, fake_tree):
    tree, commit = fake_tree
    tarball = tmp_path / "linux-fake.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(tree.parent), "--exclude=.git",
                    tree.name], check=True)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_source_type="tarball",
                          elvis_kernel_source_url=f"file://{tarball}",
                          elvis_kernel_source_sha256=digest)
    rc, out, _, facts = run_role(tmp_path, variables)
    assert rc == 0, out
    assert facts["build"]["inputs"]["source"] == f"tarball:{digest}"


def test_unknown_config_option_is_named(tmp_path, fake_tree):
    tree, commit = fake_tree
    fragment = _write(tmp_path / "unknown.config",
                      "CONFIG_FAKE_VIRTIO=y\nCONFIG_ELVIS_SIDECORE=y\n")
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_config_fragment=fragment)
    rc, out, _, _ = run_role(tmp_path, variables)
    assert rc != 0
    assert f"{fragment}:2: CONFIG_ELVIS_SIDECORE is unknown to Kconfig" in out, out
    assert "CONFIG_FAKE_VIRTIO is unknown" not in out
    assert not list((tmp_path / "work").glob("*/build.json"))


def test_installing_on_the_controller_is_refused_before_anything_runs(tmp_path, fake_tree):
    tree, commit = fake_tree
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_install=True)
    rc, out, counts, _ = run_role(tmp_path, variables)
    assert rc != 0
    assert "that is never done to the controller" in out, out
    assert counts["changed"] == 0
    assert not (tmp_path / "work").exists()


@builds
def test_building_on_another_host_delegates_every_build_step(tmp_path, fake_tree):
    # The target, kvtarget, is this machine under another inventory name; the build is
    # delegated to localhost, and the facts still land on the target.
    tree, commit = fake_tree
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_build_host="localhost")
    rc, out, counts, facts = run_role(tmp_path, variables, host="kvtarget", name="delegated")
    assert rc == 0, out
    assert facts["build"]["kernel_release"] == "6.1.0-fake-kvmnetlab"
    started = out.split("TASK [build_ship : Build | Start in the background - kernel bzImage]")[1]
    assert started.split("\n")[1].startswith("changed: [kvtarget -> localhost]"), started[:300]
    assert "ok: [kvtarget -> localhost]" in out.split("Compute the cache key")[1][:200]
    rc, out, counts, again = run_role(tmp_path, variables, host="kvtarget", name="again")
    assert rc == 0 and counts["changed"] == 0, out
    assert again["build"]["key"] == facts["build"]["key"]


@pytest.mark.parametrize("build_host, message", [
    ("nosuchhost", "elvis_kernel_build_host (nosuchhost) must be another inventory host"),
    ("kvtarget", "elvis_kernel_build_host (kvtarget) must be another inventory host"),
])
def test_a_bad_build_host_is_refused_before_anything_runs(tmp_path, fake_tree, build_host,
                                                          message):
    tree, commit = fake_tree
    variables = base_vars(tmp_path, tree, commit, elvis_kernel_build_host=build_host)
    rc, out, counts, _ = run_role(tmp_path, variables, host="kvtarget")
    assert rc != 0
    assert message in out, out
    assert counts["changed"] == 0
    assert not (tmp_path / "work").exists()


@builds
def test_upstream_mode_writes_halt_polling_and_records_knobs(tmp_path):
    knob = tmp_path / "halt_poll_ns"
    knob.write_text("200000\n")
    state = tmp_path / "state" / "elvis.json"
    variables = {"elvis_kernel_mode": "upstream", "elvis_kernel_halt_poll_ns": 400000,
                 "elvis_kernel_halt_poll_ns_path": str(knob), "elvis_kernel_poll_us": 50,
                 "elvis_kernel_io_core": 0, "elvis_kernel_state_file": str(state)}
    rc, out, counts, facts = run_role(tmp_path, variables, name="up1")
    assert rc == 0, out
    assert counts["changed"] >= 1
    assert knob.read_text().strip() == "400000"
    applied = facts["applied"]
    assert applied["mode"] == "upstream"
    assert applied["knobs"]["halt_poll_ns"] == 400000
    assert applied["knobs"]["poll_us"] == 50
    assert applied["previous"]["halt_poll_ns"] == 200000
    assert json.loads(state.read_text())["knobs"] == applied["knobs"]

    rc, out, counts, _ = run_role(tmp_path, variables, name="up2")
    assert rc == 0, out
    assert counts["changed"] == 0, out
    rc, out, counts, _ = run_role(tmp_path, variables, check=True, name="up3")
    assert rc == 0, out
    assert counts["changed"] == 0, out


def test_upstream_mode_records_a_missing_knob_as_unavailable(tmp_path):
    missing = tmp_path / "no-kvm" / "halt_poll_ns"
    state = tmp_path / "elvis.json"
    variables = {"elvis_kernel_mode": "upstream", "elvis_kernel_halt_poll_ns_path": str(missing),
                 "elvis_kernel_state_file": str(state)}
    rc, out, _, facts = run_role(tmp_path, variables)
    assert rc == 0, out
    assert "halt_poll_ns" not in facts["applied"]["knobs"]
    assert facts["applied"]["unavailable"]["halt_poll_ns"] == f"{missing} does not exist"
    assert not missing.exists()


def test_kernel_playbook_passes_syntax_check():
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check",
         "-i", "localhost,", str(ROOT / "playbooks" / "kernel.yml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
