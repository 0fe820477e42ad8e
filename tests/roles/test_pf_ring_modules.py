"""Pure functions of the pf_ring_* modules in the kvmnetlab.lab collection (loading
pf_ring.ko with its parameters is kernel_module's: test_kernel_module.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from tests.helpers import collection_module

probe_mod = collection_module("pf_ring_probe")
archive = collection_module("pf_ring_src_archive")


def fake_root(
    tmp_path: Path,
    *,
    config: str | None,
    proc_gz: str | None = None,
    modules: str | None = None,
    disabled: str | None = None,
) -> Path:
    root = tmp_path / "root"
    (root / "proc" / "sys" / "kernel").mkdir(parents=True)
    (root / "boot").mkdir()
    if config is not None:
        (root / "boot" / "config-6.1.0-9-cloud-amd64").write_text(config)
    if proc_gz is not None:
        with gzip.open(root / "proc" / "config.gz", "wt") as handle:
            handle.write(proc_gz)
    if modules is not None:
        (root / "proc" / "modules").write_text(modules)
    if disabled is not None:
        (root / "proc" / "sys" / "kernel" / "modules_disabled").write_text(disabled)
    return root


def test_probe_kernel_without_module_support_from_proc_config_gz(tmp_path):
    root = fake_root(tmp_path, config=None, proc_gz="CONFIG_X=y\n# CONFIG_MODULES is not set\n")
    found = probe_mod.probe(str(root), "6.1.0-9-cloud-amd64", "pf_ring")
    assert found["can_load_modules"] is False
    assert found["config_modules"] == "n"
    assert found["config_source"].endswith("proc/config.gz")
    assert "without module support" in found["reason"]
    assert "6.1.0-9-cloud-amd64" in found["reason"]
    assert found["proc_modules"] is False and found["loaded"] is False


def test_probe_prefers_boot_config_and_reports_loaded_params(tmp_path):
    root = fake_root(
        tmp_path,
        config="CONFIG_MODULES=y\n",
        proc_gz="# CONFIG_MODULES is not set\n",
        modules="virtio_net 61440 0 - Live 0x0\npf_ring 1052672 2 - Live 0x0\n",
        disabled="0\n",
    )
    params = root / "sys" / "module" / "pf_ring" / "parameters"
    params.mkdir(parents=True)
    (params / "min_num_slots").write_text("4096\n")
    (params / "enable_tx_capture").write_text("1\n")
    found = probe_mod.probe(str(root), "6.1.0-9-cloud-amd64", "pf_ring")
    assert found["can_load_modules"] is True and found["reason"] == ""
    assert found["config_modules"] == "y"
    assert found["config_source"].endswith("boot/config-6.1.0-9-cloud-amd64")
    assert found["loaded"] is True
    assert found["params"] == {"enable_tx_capture": "1", "min_num_slots": "4096"}


def test_probe_modules_disabled(tmp_path):
    root = fake_root(tmp_path, config="CONFIG_MODULES=y\n", modules="", disabled="1\n")
    found = probe_mod.probe(str(root), "6.1.0-9-cloud-amd64", "pf_ring")
    assert found["can_load_modules"] is False
    assert "modules_disabled" in found["reason"]


def test_probe_no_proc_modules_without_config(tmp_path):
    root = fake_root(tmp_path, config=None)
    found = probe_mod.probe(str(root), "6.1.0-9-cloud-amd64", "pf_ring")
    assert found["config_modules"] is None and found["config_source"] is None
    assert found["can_load_modules"] is False
    assert "/proc/modules is absent" in found["reason"]


def make_tree(base: Path) -> Path:
    tree = base / "PF_RING"
    (tree / "kernel").mkdir(parents=True)
    (tree / "userland" / "examples").mkdir(parents=True)
    (tree / ".git" / "objects").mkdir(parents=True)
    (tree / "kernel" / "pf_ring.c").write_text("/* stand-in */\n")
    (tree / "userland" / "examples" / "pfcount.c").write_text("int main(void){return 0;}\n")
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/dev\n")
    return tree


def test_archive_is_reproducible_and_leaves_out_git(tmp_path):
    tree = make_tree(tmp_path)
    first, count = archive.build_archive(str(tree), "PF_RING-8.8.0", [])
    second, _ = archive.build_archive(str(tree), "PF_RING-8.8.0", [])
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        names = tar.getnames()
        owners = {(m.uid, m.gid) for m in tar.getmembers()}
    assert names[0] == "PF_RING-8.8.0"
    assert "PF_RING-8.8.0/kernel/pf_ring.c" in names
    assert not any(".git" in name for name in names)
    assert owners == {(0, 0)}
    assert count == len(names) - 1


def test_archive_changes_with_content(tmp_path):
    tree = make_tree(tmp_path)
    before, _ = archive.build_archive(str(tree), "PF_RING-8.8.0", [])
    (tree / "kernel" / "pf_ring.c").write_text("/* stand-in, edited */\n")
    after, _ = archive.build_archive(str(tree), "PF_RING-8.8.0", [])
    assert before != after
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    again, _ = archive.build_archive(str(tree), "PF_RING-8.8.0", [])
    assert again == after


def test_archive_keeps_symlinks_to_folders_as_links(tmp_path):
    # PF_RING's userland/libpcap is a symlink to libpcap-1.10.1; without it the
    # userland Makefile's `cd libpcap; make` recurses into itself.
    tree = make_tree(tmp_path)
    (tree / "userland" / "libpcap-1.10.1").mkdir(parents=True)
    (tree / "userland" / "libpcap-1.10.1" / "pcap.c").write_text("/* stand-in */\n")
    (tree / "userland" / "libpcap").symlink_to("libpcap-1.10.1")
    (tree / "userland" / "README.link").symlink_to("libpcap-1.10.1/pcap.c")
    packed, _ = archive.build_archive(str(tree), "P", [])
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    link = members["P/userland/libpcap"]
    assert link.issym() and link.linkname == "libpcap-1.10.1"
    assert members["P/userland/README.link"].issym()
    assert "P/userland/libpcap/pcap.c" not in members  # not duplicated through the link
    assert members["P/userland/libpcap-1.10.1/pcap.c"].isfile()
