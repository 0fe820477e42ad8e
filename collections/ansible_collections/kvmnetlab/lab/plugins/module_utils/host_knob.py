# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing kernel knobs (sysfs, procfs) idempotently, on the tuned host.

Shared by the kvmnetlab.lab.host_knob, nic_irq_affinity and cpuidle_limit modules.
Every function takes the paths it works on, so the logic runs against a fake tree in
the tests. A knob that a host does not have, or whose write the kernel refuses, is
reported as ``unavailable`` with the reason, never as a failure: deciding whether that
is fatal is the caller's business.

The outcome of one file is a dict::

    {"path", "before", "after", "status", "changed", "reason"}

with ``status`` one of ``applied`` (written now, reads back as asked), ``already``
(held the value before), ``partial`` (written, but the kernel kept another value,
e.g. fewer huge pages than asked) and ``unavailable`` (missing, read-only or refused).
"""

from __future__ import annotations

import errno
import glob
import os
import re
import stat

from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_files import read_text

STATUSES = ("applied", "already", "partial", "unavailable")
COMPARES = ("exact", "selected", "int", "cpulist")

_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+)/(\d+))?)?$")


def parse_cpulist(text):
    """The CPUs of a kernel cpu list ("0-3,8", "2", "" ...) as a frozenset of ints.

    Raises ValueError naming the part that is not a cpu list.
    """
    cpus = set()
    text = str(text).strip()
    if not text:
        return frozenset()
    for part in text.split(","):
        part = part.strip()
        found = _RANGE.match(part)
        if not found:
            raise ValueError(f"{text!r} is not a cpu list (bad part {part!r})")
        first = int(found.group(1))
        last = int(found.group(2)) if found.group(2) is not None else first
        if last < first:
            raise ValueError(f"{text!r} is not a cpu list ({part!r} runs backwards)")
        used, group = (int(found.group(3)), int(found.group(4))) if found.group(3) else (1, 1)
        if not 0 < used <= group:
            raise ValueError(f"{text!r} is not a cpu list (bad stride in {part!r})")
        cpus.update(c for c in range(first, last + 1) if (c - first) % group < used)
    return frozenset(cpus)


def format_cpulist(cpus):
    """The shortest kernel cpu list for a set of CPUs ({0, 1, 2, 5} -> "0-2,5")."""
    parts, run = [], []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [cpu]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def selected(text):
    """The active choice of a sysfs selector ("always [madvise] never" -> "madvise")."""
    found = re.search(r"\[([^\]]*)\]", text)
    return found.group(1) if found else text.strip()


def normalise(text, compare):
    """A file's content (or a requested value) in the form values are compared in.

    Returns None when the text does not parse (it then never equals a request).
    """
    if text is None:
        return None
    text = str(text).strip()
    try:
        if compare == "selected":
            return selected(text)
        if compare == "int":
            return int(text.split()[0])
        if compare == "cpulist":
            return parse_cpulist(text)
    except (ValueError, IndexError):
        return None
    return text


def shown(text, compare):
    """How a value is reported: the active choice, an int, or a canonical cpu list."""
    value = normalise(text, compare)
    if value is None:
        return None if text is None else str(text).strip()
    if compare == "cpulist":
        return format_cpulist(value)
    return value



def write_text(path, value):
    """Write ``value`` the way `echo value > path` does; sysfs takes it in one write."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{value}\n")


def read_only_reason(path):
    """Why ``path`` cannot be written (None when it looks writable)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path} cannot be examined: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a file"
    if not info.st_mode & 0o222:
        return f"{path} is read-only on this kernel (mode {stat.S_IMODE(info.st_mode):04o})"
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return f"{path} is on a read-only mount"
    except OSError:
        pass
    return None


def refusal(path, value, exc):
    """The reason text of a write the kernel refused."""
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    return f"the kernel refused {value} in {path} ({name}: {exc.strerror})"


def set_file(path, value, compare="exact", check_mode=False, granted=None, writer=write_text):
    """Make ``path`` hold ``value``; return the outcome dict (see the module docstring).

    ``granted`` is what the kernel kept for this same request at an earlier run (e.g.
    fewer huge pages than asked): in check mode a file still holding it is predicted as
    ``partial`` and unchanged, since a real run would get the same answer.
    """
    want = normalise(value, compare)
    result = {"path": path, "requested": shown(value, compare), "before": None, "after": None,
              "status": "unavailable", "changed": False, "reason": ""}
    if want is None:
        result["reason"] = f"{value!r} is not a valid {compare} value"
        return result
    before = read_text(path)
    if before is None:
        result["reason"] = read_only_reason(path) or f"{path} cannot be read"
        return result
    result["before"] = result["after"] = shown(before, compare)
    if normalise(before, compare) == want:
        result["status"] = "already"
        return result
    why = read_only_reason(path)
    if why:
        result["reason"] = why
        return result
    if check_mode:
        if granted is not None and normalise(before, compare) == normalise(granted, compare):
            result.update(status="partial",
                          reason=f"{path} holds {result['before']} of the {result['requested']} "
                                 "asked (the kernel granted no more at an earlier run)")
            return result
        result.update(status="applied", changed=True, after=result["requested"])
        return result
    try:
        writer(path, value)
    except OSError as exc:
        result["reason"] = refusal(path, value, exc)
        return result
    after = read_text(path)
    result["after"] = shown(after, compare)
    if normalise(after, compare) == want:
        result.update(status="applied", changed=True)
    else:
        result.update(status="partial",
                      changed=normalise(after, compare) != normalise(before, compare),
                      reason=f"{path} holds {result['after']} after writing "
                             f"{result['requested']} (the kernel kept less than asked)")
    return result


def aggregate(outcomes, requested, missing_reason):
    """One setting's entry from the outcomes of its files.

    Returns {"requested", "status", "observed", "reason", "changed", "files"}: no file
    -> unavailable with ``missing_reason``; every file unavailable -> unavailable; some
    unavailable or partial -> partial; else applied when any file was written, already
    otherwise. ``observed`` is the common value after, or path -> value when they differ.
    """
    entry = {"requested": requested, "status": "unavailable", "observed": None,
             "reason": missing_reason, "changed": any(o["changed"] for o in outcomes),
             "files": {o["path"]: o["status"] for o in outcomes}}
    if not outcomes:
        return entry
    values = {o["path"]: o["after"] for o in outcomes if o["after"] is not None}
    distinct = {repr(v) for v in values.values()}
    if values:
        entry["observed"] = next(iter(values.values())) if len(distinct) == 1 else values
    statuses = {o["status"] for o in outcomes}
    reasons = []
    for outcome in outcomes:
        if outcome["reason"] and outcome["reason"] not in reasons:
            reasons.append(outcome["reason"])
    if len(reasons) > 3:
        reasons = [*reasons[:3], f"and {len(reasons) - 3} more"]
    entry["reason"] = "; ".join(reasons)
    if statuses == {"unavailable"}:
        entry["status"] = "unavailable"
    elif statuses & {"unavailable", "partial"}:
        entry["status"] = "partial"
    elif "applied" in statuses:
        entry["status"] = "applied"
    else:
        entry["status"] = "already"
    return entry


def expand(pattern):
    """The files a path or glob names, sorted naturally (cpu2 before cpu10)."""
    paths = glob.glob(pattern) if glob.has_magic(pattern) else [pattern]
    if not glob.has_magic(pattern) and not os.path.lexists(pattern):
        return []

    def key(path):
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]

    return sorted(paths, key=key)


def set_knob(name, pattern, value, compare="exact", check_mode=False, granted=None,
             missing_reason="", writer=write_text):
    """One setting over every file ``pattern`` names; the entry of :func:`aggregate`.

    ``value`` None leaves the files alone (status ``left``).
    """
    if value is None:
        return {"requested": None, "status": "left", "observed": None, "changed": False,
                "reason": f"{name} not requested: left as it is", "files": {}}
    paths = expand(pattern)
    outcomes = [set_file(p, value, compare, check_mode, granted, writer) for p in paths]
    why = missing_reason or f"{pattern} does not exist on this host"
    return aggregate(outcomes, shown(value, compare), why)


# --- IRQs of a network interface ---------------------------------------------------------

_VIRTIO = re.compile(r"^virtio\d+$")


def interrupt_lines(text):
    """(irq number, action names) of each numbered line of /proc/interrupts."""
    lines = text.splitlines()
    if not lines:
        return []
    ncpu = len(lines[0].split())
    found = []
    for line in lines[1:]:
        head, _, rest = line.partition(":")
        if not head.strip().isdigit():
            continue
        fields = rest.split()
        # counts (one per CPU), the chip, the hardware IRQ/trigger, then the action names
        # (comma separated when shared); names are the tokens after the counts and chip.
        names = " ".join(fields[ncpu:]).replace(",", " ").split()
        found.append((int(head), names))
    return found


def nic_irqs(iface, sys_class_net="/sys/class/net", interrupts_text=""):
    """IRQ numbers of a network interface and how each was found (a sorted list of pairs).

    Sources: the MSI/MSI-X vectors of its device (``device/msi_irqs``; for a virtio NIC,
    those of the virtio device's PCI function), the device's legacy ``irq``, and the
    /proc/interrupts lines that name the interface (``data0``, ``data0-TxRx-0``) or its
    virtio device (``virtio2-input.0``).
    """
    found = {}
    device = os.path.join(sys_class_net, iface, "device")
    tokens = [iface]
    if os.path.exists(device):
        real = os.path.realpath(device)
        candidates = [real]
        if _VIRTIO.match(os.path.basename(real)):
            tokens.append(os.path.basename(real))
            candidates.append(os.path.dirname(real))
        for folder in candidates:
            msi = os.path.join(folder, "msi_irqs")
            if os.path.isdir(msi):
                for entry in os.listdir(msi):
                    if entry.isdigit():
                        found.setdefault(int(entry), "msi_irqs")
                break
            legacy = read_text(os.path.join(folder, "irq"))
            if legacy and legacy.strip().isdigit() and int(legacy) > 0:
                found.setdefault(int(legacy), "irq")
                break
    for irq, names in interrupt_lines(interrupts_text):
        for name in names:
            if any(name == t or name.startswith((t + "-", t + "@")) for t in tokens):
                found.setdefault(irq, "/proc/interrupts")
    return sorted(found.items())


# --- C-states ------------------------------------------------------------------------------


def cpuidle_states(cpu_root="/sys/devices/system/cpu"):
    """Every cpuidle state of every CPU: dicts {cpu, state, name, latency_us, disable}."""
    states = []
    for folder in expand(os.path.join(cpu_root, "cpu[0-9]*", "cpuidle", "state[0-9]*")):
        latency = read_text(os.path.join(folder, "latency"))
        if latency is None or not latency.strip().isdigit():
            continue
        states.append({
            "cpu": int(os.path.basename(os.path.dirname(os.path.dirname(folder)))[3:]),
            "state": os.path.basename(folder),
            "name": (read_text(os.path.join(folder, "name")) or "").strip(),
            "latency_us": int(latency),
            "disable": os.path.join(folder, "disable"),
        })
    return states
