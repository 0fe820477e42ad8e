"""Logic that moved out of Jinja into filter plugins, as plain Python, against what the Jinja
rendered before it moved (tests/fixtures/jinja_baseline, see its CAPTURE.md).

- kvmnetlab.lab.qemu_argv: the QEMU command line (was roles/guest_vm/templates/qemu-argv.yml.j2);
- kvmnetlab.lab.patch_series: elvis_kernel's patch series (was a loop in build_inputs.yml);
- kvmnetlab.lab.cache_key: the one content-hash key of the image and kernel caches (was
  written twice, in guest_image's recipe.yml and elvis_kernel's build_inputs.yml).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO, collection_plugin, lab_guest, playbook

BASELINE = REPO / "tests" / "fixtures" / "jinja_baseline"
CASES = json.loads((BASELINE / "cases.json").read_text())
EXPECTED = json.loads((BASELINE / "expected.json").read_text())
CACHED = json.loads((BASELINE / "cached-recipes.json").read_text())
LAYOUT = yaml.safe_load((REPO / "roles/guest_image/vars/main.yml").read_text())[
    "guest_image_layout"]
GUEST_VM_DEFAULTS = yaml.safe_load((REPO / "roles/guest_vm/defaults/main.yml").read_text())


gvf, kernel, cache = (collection_plugin("filter", n) for n in ("guest_vm", "kernel", "cache"))


def settings_of(case: dict) -> dict:
    """guest_vm_qemu (roles/guest_vm/vars/main.yml) for one baseline case, as Python."""
    v = {**{k: GUEST_VM_DEFAULTS[k] for k in ("guest_vm_qemu_binary", "guest_vm_machine",
                                              "guest_vm_root_cache", "guest_vm_kernel_extra_args")},
         **CASES["argv_common"], **case["vars"]}

    def overlay(path: str) -> str:
        return f"disk-{hashlib.sha1(path.encode()).hexdigest()[:12]}.qcow2"

    return {"qemu_binary": v["guest_vm_qemu_binary"], "machine": v["guest_vm_machine"],
            "accel": v["guest_vm_accel"], "state_dir": v["guest_vm_state_dir"],
            "seed_sha1": v["guest_vm_seed_sha1"], "kernel": v["guest_vm_kernel"],
            "initrd": v["guest_vm_initrd"], "overlay": overlay(v["guest_vm_image"]),
            "disk_overlay": overlay(v["guest_vm_disk_image"]),
            "root_cache": v["guest_vm_root_cache"],
            "kernel_extra_args": v["guest_vm_kernel_extra_args"], "layout": LAYOUT}


def nice_json(value) -> str:
    """What ansible's to_nice_json writes (qemu-argv.json)."""
    return json.dumps(value, indent=4, sort_keys=True) + "\n"


ARGV_IDS = [case["case"].split(":")[0] for case in CASES["argv"]]


ARGV = list(zip(CASES["argv"], EXPECTED["argv"], strict=True))


@pytest.mark.parametrize(("case", "expected"), ARGV, ids=ARGV_IDS)
def test_qemu_argv_gives_the_templates_command_line(case, expected):
    argv = gvf.qemu_argv(case["guest"], settings_of(case))
    assert argv == expected
    assert nice_json(argv) == nice_json(expected)


RENDER_ALL = """\
- name: The start phase's command lines, through the role's own variables
  hosts: localhost
  gather_facts: false
  vars_files:
    - {repo}/roles/guest_vm/defaults/main.yml
    - {repo}/roles/guest_vm/vars/main.yml
    - {repo}/roles/guest_image/vars/main.yml
  tasks:
    - name: Render every case as start.yml records it (qemu-argv.json)
      ansible.builtin.copy:
        content: |
          {{{{ guest_vm_guest | kvmnetlab.lab.qemu_argv(guest_vm_qemu) | to_nice_json }}}}
        dest: "{{{{ out }}}}/{{{{ idx }}}}.json"
        mode: "0644"
      loop: "{{{{ cases }}}}"
      loop_control:
        index_var: idx
      vars:
        guest_vm_guest: "{{{{ item.guest }}}}"
        guest_vm_accel: "{{{{ item.vars.guest_vm_accel }}}}"
        guest_vm_root_cache: "{{{{ item.vars.guest_vm_root_cache | default('') }}}}"
        guest_vm_kernel_extra_args: "{{{{ item.vars.guest_vm_kernel_extra_args | default('') }}}}"
        guest_vm_qemu_binary: >-
          {{{{ item.vars.guest_vm_qemu_binary | default('qemu-system-x86_64') }}}}
        guest_vm_machine: "{{{{ item.vars.guest_vm_machine | default('pc') }}}}"
"""


def test_the_roles_wiring_writes_the_same_qemu_argv_json_byte_for_byte(tmp_path):
    play = tmp_path / "render.yml"
    play.write_text(RENDER_ALL.format(repo=REPO))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"cases": CASES["argv"], "out": str(tmp_path),
                                 "ansible_python_interpreter": sys.executable,
                                 **CASES["argv_common"]}))
    playbook("-i", "localhost,", "-c", "local", str(play), "-e", f"@{extra}", check=True)
    for idx, expected in enumerate(EXPECTED["argv"]):
        assert (tmp_path / f"{idx}.json").read_text() == nice_json(expected), ARGV_IDS[idx]


def qemu_error(guest: dict, **over) -> str:
    settings = {**settings_of(CASES["argv"][0]), **over}
    with pytest.raises(gvf.AnsibleFilterError) as raised:
        gvf.qemu_argv(guest, settings)
    return str(raised.value)


@pytest.mark.parametrize(("guest", "over", "message"), [
    ({"index": 1}, {}, "guest_vm_guests: an item needs a name"),
    (lab_guest("g", 0), {}, "guest_vm_guests[g].index: an integer from 1 to 99, got 0"),
    ({**lab_guest("g", 7), "index": "7"}, {},
     "guest_vm_guests[g].index: an integer from 1 to 99, got '7'"),
    (lab_guest("g", 1, netdev={"queues": "four"}), {},
     "guest_vm_guests[g].netdev.queues: a positive integer, got 'four'"),
    (lab_guest("g", 1, memory_mb=-5), {}, "guest_vm_guests[g].memory_mb: a positive integer"),
    (lab_guest("g", 1, vcpus=True), {}, "guest_vm_guests[g].vcpus: a positive integer"),
    (lab_guest("g", 1, boot="pxe"), {}, "guest_vm_guests[g].boot: direct or disk, got 'pxe'"),
    (lab_guest("g", 1), {"seed_sha1": "none"}, "guest_vm_seed_sha1 of g: the seed disk's sha1"),
    (lab_guest("g", 1, extra_nics=[{"bridge": "b"}] * 3), {},
     "guest_vm_guests[g]: data3 has no PCI slot in guest_vm_layout.nics (at most 2 extra_nics)"),
])
def test_qemu_argv_refuses_bad_guests_naming_the_field(guest, over, message):
    assert message in qemu_error(guest, **over)


def test_qemu_argv_names_the_settings_it_lacks():
    settings = settings_of(CASES["argv"][0])
    del settings["accel"], settings["layout"]
    with pytest.raises(gvf.AnsibleFilterError,
                       match=re.escape("lack accel (guest_vm_accel), layout (guest_vm_layout)")):
        gvf.qemu_argv(lab_guest("g", 1), settings)


def _layout(**over) -> dict:
    layout = json.loads(json.dumps(LAYOUT))
    for path, value in over.items():
        *parents, leaf = path.split("__")
        node = layout
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return layout


@pytest.mark.parametrize(("layout", "message"), [
    ("flat", "guest_vm_layout: a dict with root, seed and nics"),
    (_layout(root__pci_slot="0x04"), "guest_vm_layout.root.pci_slot: a PCI slot on bus 00"),
    (_layout(seed__pci_slot=0x20), "guest_vm_layout.seed.pci_slot: a PCI slot on bus 00"),
    (_layout(seed__device=""), "guest_vm_layout.seed.device: a non-empty string"),
    (_layout(root__pci_slot=0x06), "the root disk's PCI slot must come before the seed's"),
    (_layout(nics=[{"name": "data0", "pci_slot": 0x10}]), "guest_vm_layout.nics: a list"),
    (_layout(nics__1__pci_slot=None), "guest_vm_layout.nics[1].pci_slot: a PCI slot"),
    (_layout(nics__2__pci_slot=0x10), "two devices share a PCI slot"),
])
def test_a_bad_layout_is_refused_naming_the_field(layout, message):
    assert message in qemu_error(lab_guest("g", 1), layout=layout)


def test_the_layout_moves_the_devices_and_the_root_device():
    layout = _layout(root__device="/dev/sda", nics__0__pci_slot=0x1a)
    argv = gvf.qemu_argv(lab_guest("kvmnl-g1", 1), {**settings_of(CASES["argv"][0]),
                                                     "layout": layout})
    assert argv[argv.index("-append") + 1].startswith("root=/dev/sda rw ")
    assert "virtio-net-pci,netdev=data,mac=52:54:00:18:01:01,addr=0x1a" in argv


# --- the patch series ------------------------------------------------------------------------
@pytest.mark.parametrize(("case", "expected"),
                         list(zip(CASES["series"], EXPECTED["series"], strict=True)),
                         ids=[case["case"] for case in CASES["series"]])
def test_patch_series_gives_the_loops_series(case, expected):
    assert kernel.patch_series(case["results"], case["work_dir"]) == expected


@pytest.mark.parametrize(("results", "message"), [
    ([{"item": {"name": "x"}}], "elvis_kernel_patches[0]: needs a path"),
    ([{"item": {"url": "https://e.org/a.patch", "sha256": "ab" * 32}},
      {"item": {"url": "https://e.org/b.patch"}}],
     "elvis_kernel_patches[1].sha256: a sha256 of 64 hex digits, got None"),
    ([{"item": {"path": "p.patch"}, "stat": {"exists": True, "checksum": "xyz"}}],
     "elvis_kernel_patches[0].path (p.patch): checksum: a sha256 of 64 hex digits, got 'xyz'"),
    (["p.patch"], "elvis_kernel_patches[0]: a dict with a path or a url"),
])
def test_patch_series_refuses_bad_patches_naming_the_item(results, message):
    with pytest.raises(kernel.AnsibleFilterError, match=re.escape(message)):
        kernel.patch_series(results, "/w")


def test_patch_series_needs_the_work_dir():
    with pytest.raises(kernel.AnsibleFilterError, match="elvis_kernel_work_dir is empty"):
        kernel.patch_series([], "")


# --- the cache key -------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", EXPECTED["kernel"] + EXPECTED["image"],
                         ids=[f"kernel-{i}" for i in range(len(EXPECTED["kernel"]))]
                         + [f"image-{i}" for i in range(len(EXPECTED["image"]))])
def test_cache_key_gives_the_jinja_key_of_kernels_and_images(entry):
    inputs = entry.get("inputs") or entry["recipe"]
    assert cache.cache_key(inputs) == entry["key"]
    assert cache.cache_key(inputs, short=True) == entry["dir"]


@pytest.mark.parametrize("folder", sorted(CACHED))
def test_the_images_already_cached_keep_their_folders(folder):
    assert cache.cache_key(CACHED[folder], short=True) == folder


def test_cache_key_depends_on_every_input_not_on_key_order():
    recipe = EXPECTED["image"][0]["recipe"]
    assert cache.cache_key(dict(reversed(list(recipe.items())))) == cache.cache_key(recipe)
    assert cache.cache_key({**recipe, "size": "3G"}) != cache.cache_key(recipe)
    assert cache.cache_key({**recipe, "customise_version": "2"}) != cache.cache_key(recipe)


@pytest.mark.parametrize(("inputs", "message"), [
    ([], "the inputs must be a non-empty dict"),
    ({}, "the inputs must be a non-empty dict"),
    ({"source": object()}, "an input is not plain data"),
])
def test_cache_key_refuses_what_is_not_a_recipe(inputs, message):
    with pytest.raises(cache.AnsibleFilterError, match=message):
        cache.cache_key(inputs)


# --- the filters document themselves as ansible-doc shows filters --------------------------------
def test_ansible_doc_shows_the_moved_filters():
    from tests.helpers import BIN, ansible_env

    names = ["qemu_argv", "patch_series", "cache_key", "guest_layout"]
    done = subprocess.run([str(BIN / "ansible-doc"), "-t", "filter", "--json",
                           *(f"kvmnetlab.lab.{name}" for name in names)],
                          cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    docs = json.loads(done.stdout)
    for name in names:
        entry = docs[f"kvmnetlab.lab.{name}"]
        assert entry["doc"]["name"] == name
        assert "_input" in entry["doc"]["options"]
        assert entry["examples"] and "_value" in entry["return"]
