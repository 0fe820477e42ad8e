"""Will the hypervisor hold the guests and containers a campaign asks for? (pure)

The preflight reads the hypervisor's available memory, online cores and running
guests on the hypervisor itself (the module ``kvmnetlab.lab.lab_capacity_info``), then
:func:`refusals` compares them with what the chosen scenarios need
(:func:`kvmnetlab.campaign.needs`), before any host is changed. Every refusal states
the numbers it compared.
"""

from __future__ import annotations

from typing import Any


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


MEASURED = ("available_mb", "cores", "running")
DEMAND = ("needs", "guests", "containers", "vcpus_per_core", "guest_overhead_mb")


def refusals(measured: dict[str, Any], demand: dict[str, Any], hypervisor: str) -> list[str]:
    """:func:`problems` for what ``kvmnetlab.lab.lab_capacity_info`` ``measured`` on
    ``hypervisor`` (``available_mb``, ``cores``, ``running``) and the campaign's
    ``demand`` (``needs``, ``guests``, ``containers``, ``vcpus_per_core``,
    ``guest_overhead_mb``); a missing key is a ValueError naming it."""
    for what, given, keys in (("measured", measured, MEASURED), ("demand", demand, DEMAND)):
        missing = [key for key in keys if key not in (given or {})]
        if missing:
            raise ValueError(f"capacity of {hypervisor}: {what} lacks {', '.join(missing)}")
    return problems(demand["needs"], list(demand["guests"] or []),
                    list(demand["containers"] or []), hypervisor=hypervisor,
                    available_mb=float(measured["available_mb"]), cores=int(measured["cores"]),
                    vcpus_per_core=float(demand["vcpus_per_core"]),
                    guest_overhead_mb=float(demand["guest_overhead_mb"]),
                    running=list(measured["running"] or []))
