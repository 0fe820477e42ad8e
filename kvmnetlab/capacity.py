"""Will the hypervisor hold the guests and containers a campaign asks for? (pure)

The preflight reads the hypervisor's available memory and online cores on the
hypervisor itself, then :func:`problems` compares them with what the chosen
scenarios need (:func:`kvmnetlab.campaign.needs`), before any host is changed.
Every refusal states the numbers it compared.
"""

from __future__ import annotations

from typing import Any


def meminfo_available_mb(text: str, source: str = "/proc/meminfo") -> float:
    """MemAvailable of a /proc/meminfo text, in MiB."""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "MemAvailable":
            fields = rest.split()
            if len(fields) == 2 and fields[1] == "kB" and fields[0].isdigit():
                return int(fields[0]) / 1024
            break
    raise ValueError(f"{source}: no 'MemAvailable: <n> kB' line")


def problems(needs: dict[str, int], guests: list[dict[str, Any]],
             containers: list[dict[str, Any]], *, hypervisor: str, available_mb: float,
             cores: int, vcpus_per_core: float, guest_overhead_mb: float,
             running: list[str] = ()) -> list[str]:
    """Why the hypervisor cannot hold ``needs`` (``{guests, containers}``); [] when it can.

    ``guests`` and ``containers`` are the lab's declared lists (the first N are started);
    ``running`` names those already running, whose memory is already spent and so not
    counted again. A guest takes its ``memory_mb`` plus ``guest_overhead_mb`` of QEMU's own
    (MiB); a container its ``memory_mb`` (its cgroup limit). Guests' vCPUs may be at most
    ``vcpus_per_core`` per online core: beyond that, competing guests measure the
    scheduler's queue more than their own I/O path.
    """
    out: list[str] = []
    want_g, want_c = int(needs.get("guests", 0)), int(needs.get("containers", 0))
    for kind, want, declared in (("guests", want_g, guests), ("containers", want_c, containers)):
        if want > len(declared):
            where = "guest_vm_guests" if kind == "guests" else "container_lab_containers"
            out.append(f"the scenarios ask for {want} {kind} at once; the inventory declares "
                       f"{len(declared)} ({where})")
    booted_g, booted_c = guests[:want_g], containers[:want_c]
    new_mb = sum(float(g.get("memory_mb", 0)) + guest_overhead_mb
                 for g in booted_g if g.get("name") not in running)
    new_mb += sum(float(c.get("memory_mb", 0)) for c in booted_c if c.get("name") not in running)
    if new_mb > available_mb:
        out.append(
            f"{want_g} guests and {want_c} containers need {new_mb:.0f} MiB more memory "
            f"(each guest its memory_mb + {guest_overhead_mb:.0f} MiB of QEMU, each container "
            f"its memory_mb; those already running not counted); {hypervisor} has "
            f"{available_mb:.0f} MiB available (MemAvailable)")
    vcpus = sum(int(g.get("vcpus", 1)) for g in booted_g)
    limit = cores * vcpus_per_core
    if vcpus > limit:
        out.append(f"{want_g} guests have {vcpus} vCPUs; {hypervisor} has {cores} cores, and "
                   f"at most {vcpus_per_core:g} vCPUs per core ({limit:g}) are allowed "
                   "(kvmnetlab_vcpus_per_core)")
    return out
