"""Pure logic of the elvis_kernel role (controller-side filters): Kconfig checks, grub entries."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.helpers import REPO as ROOT
from tests.helpers import generated_section, option_section

PLUGIN = (ROOT / "collections" / "ansible_collections" / "kvmnetlab" / "lab" / "plugins" / "filter"
          / "kernel.py")
FIXTURES = ROOT / "tests" / "kernel_patches" / "fixtures"


def _load():
    spec = importlib.util.spec_from_file_location("elvis_kernel_filters", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ek = _load()

FINAL = """\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_64BIT=y
CONFIG_NET=y
CONFIG_VIRTIO_NET=m
# CONFIG_DEBUG_INFO is not set
CONFIG_LOCALVERSION="-lab"
CONFIG_HZ=250
"""


def test_parse_reads_values_and_unset_lines():
    opts = ek.kconfig_parse(FINAL)
    assert opts["CONFIG_64BIT"] == {"value": "y", "line": 4}
    assert opts["CONFIG_DEBUG_INFO"]["value"] == "n"
    assert opts["CONFIG_LOCALVERSION"]["value"] == '"-lab"'
    assert "CONFIG_EXT4_FS" not in opts


def test_parse_names_file_and_line_of_a_bad_line():
    with pytest.raises(ek.AnsibleFilterError, match=r"frag\.config:2: not a Kconfig line"):
        ek.kconfig_parse("CONFIG_NET=y\nNET=y\n", "frag.config")


def test_mismatches_accept_honoured_fragment():
    fragment = 'CONFIG_NET=y\nCONFIG_VIRTIO_NET=m\n# CONFIG_DEBUG_INFO is not set\nCONFIG_HZ=250\n'
    assert ek.kconfig_mismatches(FINAL, fragment) == []


def test_n_request_is_met_by_absence():
    assert ek.kconfig_mismatches(FINAL, "# CONFIG_EXT4_FS is not set\nCONFIG_KVM=n\n") == []


def test_mismatches_name_every_unhonoured_option_with_its_line():
    fragment = "CONFIG_NET=y\nCONFIG_VIRTIO_NET=y\nCONFIG_NOT_A_THING=y\n# c\nCONFIG_HZ=1000\n"
    got = ek.kconfig_mismatches(FINAL, fragment, "frag.config")
    assert got == [
        {"option": "CONFIG_VIRTIO_NET", "line": 2, "requested": "y", "found": "m"},
        {"option": "CONFIG_NOT_A_THING", "line": 3, "requested": "y", "found": None},
        {"option": "CONFIG_HZ", "line": 5, "requested": "1000", "found": "250"},
    ]


def test_report_separates_unknown_options_from_unmet_ones():
    mismatches = [
        {"option": "CONFIG_NOT_A_THING", "line": 3, "requested": "y", "found": None},
        {"option": "CONFIG_VIRTIO_NET", "line": 2, "requested": "y", "found": "m"},
    ]
    kconfig = "config VIRTIO_NET\n\ttristate \"virtio\"\nmenuconfig NET\n"
    known = ek.kconfig_symbols(kconfig)
    assert known == ["CONFIG_NET", "CONFIG_VIRTIO_NET"]
    msg = ek.kconfig_report(mismatches, known, "frag.config")
    assert "frag.config:3: CONFIG_NOT_A_THING is unknown to Kconfig" in msg
    assert "frag.config:2: CONFIG_VIRTIO_NET: requested y, the final .config has m" in msg
    assert "CONFIG_VIRTIO_NET is unknown" not in msg


GRUB_CFG = FIXTURES / "grub.cfg"


def test_grub_entry_in_a_grub_mkconfig_output_is_the_release_specific_one():
    text = GRUB_CFG.read_text()
    assert ek.grub_entry(text, "6.1.192-kvmnetlab") == (
        "gnulinux-advanced-/dev/vda>gnulinux-6.1.192-kvmnetlab-advanced-/dev/vda")
    assert ek.grub_entry(text, "6.1.0-56-cloud-amd64") == (
        "gnulinux-advanced-/dev/vda>gnulinux-6.1.0-56-cloud-amd64-advanced-/dev/vda")
    with pytest.raises(ek.AnsibleFilterError, match=r"vmlinuz-6\.1\.0-57-cloud-amd64"):
        ek.grub_entry(text, "6.1.0-57-cloud-amd64")


def test_grub_entry_walks_submenus_and_skips_recovery():
    text = """\
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-U' {
\tlinux\t/boot/vmlinuz-6.1.0-9-amd64 root=UUID=U ro quiet
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-U' {
\tmenuentry 'Linux 6.1.0-lab (recovery mode)' $menuentry_id_option 'gnulinux-6.1.0-lab-recovery-U' {
\t\tif [ x$feature_platform_search_hint = xy ]; then
\t\t  search --no-floppy --fs-uuid --set=root U
\t\tfi
\t\tlinux\t/boot/vmlinuz-6.1.0-lab root=UUID=U ro single
\t}
\tmenuentry 'Debian, with Linux 6.1.0-lab' $menuentry_id_option 'gnulinux-6.1.0-lab-advanced-U' {
\t\tlinux\t/boot/vmlinuz-6.1.0-lab root=UUID=U ro quiet
\t}
}
"""
    assert ek.grub_entry(text, "6.1.0-lab") == "gnulinux-advanced-U>gnulinux-6.1.0-lab-advanced-U"
    assert ek.grub_entry(text, "6.1.0-9-amd64") == "gnulinux-simple-U"
    with pytest.raises(ek.AnsibleFilterError, match=r"grub\.cfg: no boot entry loads vmlinuz-7\.0"):
        ek.grub_entry(text, "7.0")


# --- the role README's option table is generated from meta/argument_specs.yml --------
# Regenerate with: .venv/bin/python -m tests.roles.test_kernel_logic --write-readme

ROLE = ROOT / "roles" / "elvis_kernel"
README = ROLE / "README.md"
BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by tests/roles/test_kernel_logic.py -->"
END = "<!-- END generated -->"


def readme_section() -> str:
    return option_section(ROLE, BEGIN, END, suboptions=False)


def test_readme_option_table_matches_the_argument_spec():
    assert generated_section(README.read_text(), BEGIN, END) == readme_section(), (
        "roles/elvis_kernel/README.md is stale: "
        "run .venv/bin/python -m tests.roles.test_kernel_logic --write-readme")


def test_every_default_is_in_the_argument_spec_and_back():
    import yaml

    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        assert options[name].get("default") == value, name


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-readme"]:
        text = README.read_text()
        README.write_text(text.replace(generated_section(text, BEGIN, END), readme_section()))
    else:
        raise SystemExit("usage: python -m tests.roles.test_kernel_logic --write-readme")
