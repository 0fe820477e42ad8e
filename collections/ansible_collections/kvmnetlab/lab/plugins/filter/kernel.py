"""Controller-side logic of the elvis_kernel role: Kconfig verification and grub entries.

Everything here is a pure function on text the role slurped from the build or
target host, so it runs on the controller and is unit-tested without a kernel.
"""

from __future__ import annotations

import posixpath
import re

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only when imported outside Ansible's venv
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_KCONFIG_SYMBOL = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$")


def kconfig_parse(text: str, source: str = ".config") -> dict[str, dict]:
    """Parse a .config or a config fragment.

    Returns ``{CONFIG_NAME: {"value": str, "line": int}}``; ``# CONFIG_X is not set``
    gives the value ``n``. Other comments and blank lines are ignored; anything else
    is an error naming ``source`` and the 1-based line.
    """
    options: dict[str, dict] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _SET.match(line) or _UNSET.match(line)
        if match is None:
            if line.startswith("#"):
                continue
            raise AnsibleFilterError(
                f"{source}:{number}: not a Kconfig line "
                f"(expected CONFIG_NAME=value or '# CONFIG_NAME is not set'): {line!r}"
            )
        value = match.group(2) if match.re is _SET else "n"
        options[match.group(1)] = {"value": value, "line": number}
    return options


def kconfig_mismatches(final_text: str, fragment_text: str, fragment_name: str = "fragment"):
    """Compare a final .config with the fragment that was merged into it.

    Returns one dict per option of the fragment that did not end up as requested:
    ``{option, line, requested, found}`` where ``found`` is the final value or
    ``None`` when the option is absent from the final .config. A request for ``n`` is
    met by ``n`` or by absence.
    """
    final = kconfig_parse(final_text, ".config")
    wanted = kconfig_parse(fragment_text, fragment_name)
    result = []
    for option, spec in wanted.items():
        found = final.get(option, {}).get("value")
        requested = spec["value"]
        if requested == "n" and found in (None, "n"):
            continue
        if found == requested:
            continue
        result.append(
            {"option": option, "line": spec["line"], "requested": requested, "found": found}
        )
    return result


def kconfig_symbols(text: str) -> list[str]:
    """Names (with the CONFIG_ prefix) declared by ``config``/``menuconfig`` lines."""
    names = set()
    for line in text.splitlines():
        match = _KCONFIG_SYMBOL.match(line)
        if match:
            names.add("CONFIG_" + match.group(1))
    return sorted(names)


def kconfig_report(mismatches, known_symbols, fragment_name: str = "fragment") -> str:
    """One message naming every option of the fragment that was not honoured.

    ``known_symbols`` lists the options some Kconfig file of the tree declares; an
    option not among them is reported as unknown to Kconfig, the others as having
    been changed by olddefconfig (unmet dependencies or a choice).
    """
    known = set(known_symbols)
    parts = []
    for item in mismatches:
        where = f"{fragment_name}:{item['line']}: {item['option']}"
        if item["option"] not in known:
            parts.append(f"{where} is unknown to Kconfig in this source tree")
        else:
            found = "absent" if item["found"] is None else item["found"]
            parts.append(
                f"{where}: requested {item['requested']}, the final .config has {found} "
                "(unmet dependencies or a choice)"
            )
    return "; ".join(parts)


def grub_entry(grub_cfg: str, kernel_release: str, source: str = "grub.cfg") -> str:
    """The grub-reboot/grub-set-default path of the normal entry booting a kernel.

    Walks ``submenu``/``menuentry`` blocks and returns their ``$menuentry_id_option``
    ids joined with ``>`` (e.g. ``gnulinux-advanced-UUID>gnulinux-6.1.0-x-advanced-UUID``)
    of an entry whose ``linux`` line loads ``vmlinuz-<kernel_release>``, skipping
    recovery-mode entries. The entry whose id names the release (the "advanced" one) is
    preferred to the top "simple" entry, which boots whatever kernel is newest. An entry
    without an id is addressed by its title.
    """
    block = re.compile(r"^\s*(submenu|menuentry)\s+(['\"])(.*?)\2(.*)\{\s*$")
    ident = re.compile(r"\$menuentry_id_option\s+'([^']+)'")
    linux = re.compile(r"^\s*linux(?:16|efi)?\s+(\S+)")
    stack: list[tuple[str, str, bool]] = []  # (kind, address, recovery)
    depth_marks: list[int] = []
    depth = 0
    matches: list[str] = []
    for raw in grub_cfg.splitlines():
        line = raw.strip()
        match = block.match(raw)
        if match:
            kind, _, title, rest = match.groups()
            found = ident.search(rest)
            address = found.group(1) if found else title
            recovery = "recovery" in title.lower() or "recovery" in address
            stack.append((kind, address, recovery))
            depth += 1
            depth_marks.append(depth)
            continue
        if line.startswith("#"):
            continue
        depth += line.count("{") - line.count("}")
        while depth_marks and depth < depth_marks[-1]:
            depth_marks.pop()
            stack.pop()
        target = linux.match(raw)
        if target and stack and stack[-1][0] == "menuentry" and not stack[-1][2]:
            image = target.group(1).rsplit("/", 1)[-1]
            if image == f"vmlinuz-{kernel_release}":
                matches.append(">".join(address for _, address, _ in stack))
    for path in matches:
        if kernel_release in path.rsplit(">", 1)[-1]:
            return path
    if matches:
        return matches[0]
    raise AnsibleFilterError(
        f"{source}: no boot entry loads vmlinuz-{kernel_release} "
        "(did the package's postinst run update-grub?)"
    )


def patch_series(results: list, work_dir: str) -> list[dict]:
    """The ordered patch series of the build, from the role's patch checksums.

    ``results`` are the registered results of the role's stat loop over
    elvis_kernel_patches, in order: ``{item, stat}`` for a local patch (``stat.checksum``
    is the file's sha256 on the controller), ``{item}`` alone for a patch given by URL
    (its ``item.sha256`` is the expected one). Each patch becomes ``{name, path, url,
    sha256, file}``: its name (``item.name``, else the base name of its path or URL), the
    lower-case sha256, and the file it is stored as on the build host,
    ``<work_dir>/patches/<sha256>.patch``. Errors name the item of elvis_kernel_patches.
    """
    if not work_dir:
        raise AnsibleFilterError("patch_series: elvis_kernel_work_dir is empty")
    series = []
    for number, result in enumerate(results or []):
        field = f"elvis_kernel_patches[{number}]"
        patch = result.get("item") if isinstance(result, dict) else result
        if not isinstance(patch, dict):
            raise AnsibleFilterError(f"{field}: a dict with a path or a url, got {patch!r}")
        source = patch.get("path", patch.get("url"))
        if not source:
            raise AnsibleFilterError(f"{field}: needs a path (a file on the controller) or a url")
        stat = result.get("stat")
        if stat is not None:
            checksum, what = stat.get("checksum"), f"{field}.path ({patch.get('path')}): checksum"
        else:
            checksum, what = patch.get("sha256"), f"{field}.sha256"
        if not isinstance(checksum, str) or not _SHA256.match(checksum):
            raise AnsibleFilterError(f"{what}: a sha256 of 64 hex digits, got {checksum!r}")
        checksum = checksum.lower()
        series.append({"name": patch.get("name", posixpath.basename(source)),
                       "path": patch.get("path", ""), "url": patch.get("url", ""),
                       "sha256": checksum,
                       "file": f"{work_dir}/patches/{checksum}.patch"})
    return series


class FilterModule:
    """Kernel build and boot filters (used by the elvis_kernel role), called by their
    FQCN, e.g. ``kvmnetlab.lab.grub_entry``."""

    def filters(self):
        return {
            "kconfig_mismatches": kconfig_mismatches,
            "kconfig_symbols": kconfig_symbols,
            "kconfig_report": kconfig_report,
            "grub_entry": grub_entry,
            "patch_series": patch_series,
        }
