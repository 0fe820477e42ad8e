# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the campaign role; thin adapters over the controller's collectors package.

Each filter is documented by the ``<name>.yml`` beside this file (what
``ansible-doc -t filter kvmnetlab.lab.<name>`` prints).
"""

from __future__ import annotations


def capability_probe_plan(guests, endpoints, hypervisor):
    from kvmnetlab.capabilities import probe_plan

    keys = ("inventory_hostname", "kvmnetlab_guest_hypervisor", "kvmnetlab_guest_data_ip")
    return probe_plan(endpoints, hypervisor,
                      [{k: g.get(k) for k in keys} for g in guests or []])


def campaign_flows(run, endpoints, hostvars):
    """The run's flows, one per receiving host (see kvmnetlab.campaign.run_flows)."""
    from kvmnetlab.campaign import run_flows

    return run_flows(run, endpoints, hostvars)


def campaign_more_flows(flows, link_cache, pf_ring):
    """Flows 2..N for kvmnetlab.lab.collector_plan (see kvmnetlab.campaign.more_flows)."""
    from kvmnetlab.campaign import more_flows

    return more_flows(flows, link_cache, pf_ring)


def lab_capacity(measured, demand, hypervisor):
    """Why the hypervisor cannot hold the campaign's guests and containers ([] when it can):
    ``measured`` is kvmnetlab.lab.lab_capacity_info's result on ``hypervisor``, ``demand``
    the mapping kvmnetlab.capacity.refusals reads (needs, guests, containers,
    vcpus_per_core, guest_overhead_mb)."""
    from kvmnetlab.capacity import refusals

    return refusals(measured, demand, hypervisor)


def campaign_link_cache(results, cache):
    """``cache`` (``<host>|<address>`` -> that host's ``ip -j addr show`` output, the key
    kvmnetlab.campaign.more_flows reads) with what the registered loop results of the
    interface lookup add (item: {host, address}); a result without output (skipped, as
    already cached, or unreachable) adds nothing. ``cache`` itself is left as it is."""
    out = dict(cache or {})
    for r in results or []:
        if isinstance(r, dict) and "stdout" in r and isinstance(r.get("item"), dict):
            out[f"{r['item']['host']}|{r['item']['address']}"] = r["stdout"]
    return out


def fetched_bundles(results):
    """The tars kvmnetlab.lab.collect brought back, from its registered loop results:
    one {host, tar, members} per result with ``fetched`` (store_commit's ``bundles``)."""
    return [{"host": r["item"]["host"], "tar": r["fetched"], "members": r.get("members") or {}}
            for r in results or [] if isinstance(r, dict) and r.get("fetched")]


def run_dirs(results):
    """Host -> the private run folder its kvmnetlab.lab.collect calls of this repetition
    work in, from their registered loop results (the host made it; the controller only
    learns its path). A folder already removed after its tar was fetched is left out."""
    out = {}
    for r in results or []:
        if isinstance(r, dict) and r.get("run_dir") and isinstance(r.get("item"), dict):
            if r.get("removed"):
                out.pop(r["item"]["host"], None)
            else:
                out[r["item"]["host"]] = r["run_dir"]
    return out


def run_dir_space_problems(results, min_free_mb):
    """One message per host whose base folder of run folders is not private (its path,
    owner and mode) or whose file system has less than ``min_free_mb`` MiB free (the host,
    the path, the free bytes and the setting), from the registered loop results of
    kvmnetlab.lab.run_dir_space_info (item: the host)."""
    from kvmnetlab.errors import human_bytes

    need = int(min_free_mb) << 20
    out = []
    for r in results or []:
        if not isinstance(r, dict) or "free_bytes" not in r:
            continue
        if r.get("base_problem"):
            out.append(f"{r['item']}: {r['base_problem']}")
        if r["free_bytes"] >= need:
            continue
        out.append(f"{r['item']}: {r['path']}: {human_bytes(r['free_bytes'])} free on its "
                   f"file system (mounted on {r['mount']}), below "
                   f"campaign_remote_min_free_mb ({human_bytes(need)}); free space there or "
                   "lower the setting")
    return out


def reaped_states(hostvars, hosts):
    """``{host: {reaped: [...]}}`` for each of ``hosts`` whose registered ``campaign_reap``
    (kvmnetlab.lab.collect with reap) found a killed run's tools; others left out."""
    out = {}
    for host in hosts or []:
        found = ((hostvars.get(host) or {}).get("campaign_reap") or {}).get("reaped") or []
        if found:
            out[host] = {"reaped": list(found)}
    return out


class FilterModule:
    def filters(self):
        return {"capability_probe_plan": capability_probe_plan,
                "campaign_flows": campaign_flows, "campaign_more_flows": campaign_more_flows,
                "lab_capacity": lab_capacity, "campaign_link_cache": campaign_link_cache,
                "fetched_bundles": fetched_bundles, "run_dirs": run_dirs,
                "run_dir_space_problems": run_dir_space_problems,
                "reaped_states": reaped_states}
