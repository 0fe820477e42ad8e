"""Parse a copy of /proc/interrupts (``cat /proc/interrupts``).

The header names the online CPUs (``CPU0 CPU1 ...``). Each row is ``<irq>:`` then
one count per CPU, then a description. Numbered rows (device interrupts) read
``<chip> <hwirq>-<edge|level|...> <actions>``, e.g.
``PCI-MSIX-0000:00:04.0 1-edge virtio3-rx``; the chip name may also carry the
trigger (``PCI-MSI-edge`` on old kernels). Named rows are architecture counters
(``NMI``, ``LOC``, ``RES``, ``CAL``, ``TLB``, ...); ``ERR`` and ``MIS`` carry a single
system-wide count and no per-CPU columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._text import INT64_MAX, read_lines, to_int
from kvmnetlab.errors import ParseError

_CPU = re.compile(r"^CPU([0-9]+)$")
_IRQ = re.compile(r"^\s*(?P<irq>[0-9A-Za-z_]+):(?P<rest>.*)$")
_CHIP = re.compile(
    r"^(?P<chip>\S+)\s+(?P<hwirq>\S+?)-(?P<trigger>edge|level|fasteoi|none)"
    r"(?:\s+(?P<actions>.*))?$"
)
#: rows that print one system-wide number instead of one per CPU
SINGLE_COUNT_ROWS = ("ERR", "MIS")


@dataclass
class Interrupts:
    """``cpus``: CPU numbers of the columns, in order.

    ``irqs``: one dict per row: ``irq`` (str: ``"36"``, ``"LOC"``), ``kind``
    (``"device"`` for numbered rows, ``"arch"`` for named ones), ``counts``
    (interrupts since boot per CPU, aligned with ``cpus``; None for ERR/MIS),
    ``total`` (interrupts since boot, all CPUs), ``description`` (the text after the
    counts, whitespace squeezed), and for device rows ``chip``, ``hwirq``,
    ``trigger`` and ``actions`` (the handlers' names, e.g. ``virtio3-rx``) when the
    description has that shape, else None.
    """

    cpus: list[int] = field(default_factory=list)
    irqs: list[dict] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """Tidy rows: irq, cpu (None for a system-wide count), count."""
        out = []
        for irq in self.irqs:
            if irq["counts"] is None:
                out.append({"irq": irq["irq"], "cpu": None, "count": irq["total"]})
            else:
                out.extend(
                    {"irq": irq["irq"], "cpu": cpu, "count": n}
                    for cpu, n in zip(self.cpus, irq["counts"], strict=True)
                )
        return out


def parse(path: str | Path) -> Interrupts:
    path = Path(path)
    lines = read_lines(path)
    result = Interrupts(cpus=_header(path, lines[0]))
    seen: set[str] = set()
    for lineno, line in enumerate(lines[1:], start=2):
        m = _IRQ.match(line)
        if not m:
            raise ParseError(path, lineno, f"expected '<irq>: <counts>': {line!r}")
        irq = m["irq"]
        if irq in seen:
            raise ParseError(path, lineno, f"irq {irq} appears twice")
        seen.add(irq)
        words = m["rest"].split()
        if irq in SINGLE_COUNT_ROWS:
            result.irqs.append(_single_row(path, lineno, irq, words))
        else:
            result.irqs.append(_row(path, lineno, irq, words, len(result.cpus)))
    if not result.irqs:
        raise ParseError(path, len(lines), "truncated: no interrupt rows")
    # Named rows follow the device rows and the kernel always prints ERR (x86) or
    # at least one named row; a file ending on a device row was cut short.
    if result.irqs[-1]["kind"] == "device":
        raise ParseError(
            path, len(lines), "truncated: ends before the named (NMI, LOC, ERR...) rows"
        )
    return result


def _header(path: Path, line: str) -> list[int]:
    """The CPU numbers of the header's ``CPU<n>`` columns."""
    cpus = []
    for word in line.split():
        m = _CPU.match(word)
        if not m:
            raise ParseError(path, 1, f"header: expected CPU<n> columns, got {word!r}")
        cpus.append(to_int(path, 1, m[1], "CPU number"))
    return cpus


def _single_row(path: Path, lineno: int, irq: str, words: list[str]) -> dict:
    """A row with one count for all CPUs (ERR, MIS)."""
    if len(words) != 1:
        raise ParseError(path, lineno, f"{irq}: expected one count, got {words!r}")
    return {
        "irq": irq,
        "kind": "arch",
        "counts": None,
        "total": to_int(path, lineno, words[0], irq),
        "description": "",
        "chip": None,
        "hwirq": None,
        "trigger": None,
        "actions": None,
    }


def _row(path: Path, lineno: int, irq: str, words: list[str], ncpu: int) -> dict:
    """A row with a count per CPU: a device (numbered) or an architecture row (named)."""
    counts = words[:ncpu]
    if len(counts) < ncpu or not all(c.isascii() and c.isdigit() for c in counts):
        raise ParseError(
            path,
            lineno,
            f"irq {irq}: expected {ncpu} per-CPU counts, got {' '.join(words[:ncpu])!r}",
        )
    description = " ".join(words[ncpu:])
    row = {
        "irq": irq,
        "kind": "device" if irq.isdigit() else "arch",
        "counts": [to_int(path, lineno, c, f"irq {irq} count") for c in counts],
        "description": description,
        "chip": None,
        "hwirq": None,
        "trigger": None,
        "actions": None,
    }
    row["total"] = sum(row["counts"])
    if row["total"] > INT64_MAX:
        raise ParseError(path, lineno, f"irq {irq}: the counts add up beyond {INT64_MAX}")
    if row["kind"] == "device":
        if not description:
            raise ParseError(path, lineno, f"irq {irq}: no chip or handler name")
        if cm := _CHIP.match(description):
            row.update(
                chip=cm["chip"],
                hwirq=cm["hwirq"],
                trigger=cm["trigger"],
                actions=cm["actions"] or None,
            )
    return row
