"""The report's last section: where, when and how the campaign ran, and with which
analysis settings.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from analysis import tables
from analysis.document import (
    Bullets,
    Para,
    Section,
    Table,
    integer,
    text,
)
from analysis.load import Campaign
from analysis.report_context import Context

PARAMETER_UNITS = {
    "repetitions": "repetitions",
    "ping_count": "probes",
    "ping_interval_s": "s",
    "ping_payload_bytes": "bytes",
    "seed": "",
}
_SUFFIX_UNITS = {"_s": "s", "_ms": "ms", "_us": "µs", "_bytes": "bytes", "_pps": "packets/s",
                 "_pct": "%", "_bps": "bit/s", "_mbps": "Mbit/s", "_gbps": "Gbit/s"}


# --------------------------------------------------------------------------- header


def _unit(key: str) -> str:
    if key in PARAMETER_UNITS:
        return PARAMETER_UNITS[key]
    return next((u for suffix, u in _SUFFIX_UNITS.items() if key.endswith(suffix)), "")


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text(value)


def _kv(items: dict[str, Any], key_header: str = "key") -> pd.DataFrame:
    return pd.DataFrame(
        {key_header: list(items), "value": [_plain(v) for v in items.values()]}
    )


def scenario_table(ctx: Context) -> pd.DataFrame:
    """The scenarios as requested, with their status and substitutions."""
    return tables.scenario_overview(ctx.campaign.scenarios)


def metadata_section(ctx: Context, overview: pd.DataFrame) -> Section:
    c, o = ctx.campaign, ctx.options
    m = c.manifest
    git = m.get("git") or {}
    lab = m.get("lab") or {}
    commit = git.get("commit") or "unknown"
    if git.get("dirty"):
        commit += " (dirty: uncommitted changes)"
    about = {
        "campaign id": c.campaign_id,
        "started at (UTC)": m.get("started_at"),
        "finished at (UTC)": m.get("finished_at") or "not finished",
        "kvmnetlab commit": commit,
        "lab": lab.get("name"),
        "results folder": str(c.path),
        "baseline scenario": ctx.baseline or "none (no RTT data)",
        "confidence level C (alpha = 1 - C)": f"{o.confidence:g} (alpha = {ctx.alpha:g})",
        "TOST equivalence margin": o.margin.describe(),
        "closeness percentile": f"p{o.percentile:g} of the baseline",
        "bootstrap": f"{o.resamples} resamples, seed {ctx.seed}",
        "plan": _plan_text(c),
    }
    params = pd.DataFrame(
        {
            "parameter": list(c.parameters),
            "value": [_plain(v) for v in c.parameters.values()],
            "unit": [_unit(k) for k in c.parameters],
        }
    )
    blocks: list[Any] = [
        Para("Where, when and how the campaign ran, and with which analysis settings. The "
             "answers are at the top of the report (Summary)."),
        Table(_kv(about, "item"), [("item", "", text), ("value", "", text)], "Campaign"),
        Table(params, [("parameter", "parameter", text), ("value", "value", text),
                       ("unit", "unit", text)], "Parameters", ctx.csv(params, "parameters")),
    ]
    profile = lab.get("profile") or {}
    if profile:
        frame = tables.lab_profile(profile)
        host_cols = [(h, h, text) for h in frame.columns if h not in ("capability", "meaning")]
        blocks.append(Table(frame, [("capability", "capability", text),
                                    ("meaning", "meaning", text), *host_cols],
                            "Lab profile: capabilities probed on each host "
                            "(kvmnetlab.lab.lab_capabilities_info, read on the host that has them)",
                            ctx.csv(frame, "lab_profile")))
        roles = profile.get("roles") or {}
        if roles:
            blocks.append(Para(
                "Scenarios resolve against these hosts: bare metal "
                f"{_plain((roles.get('endpoints') or {}).get('bare_metal'))}; guests "
                f"{_plain(roles.get('guests'))} on hypervisor {roles.get('hypervisor')}; "
                f"declared (not probed): {_plain(profile.get('declared'))}."))
    if m.get("tool_versions"):
        versions = tables.tool_versions_table(m["tool_versions"])
        blocks.append(Table(versions, [("tool", "tool", text), ("version", "version", text),
                                       ("hosts", "hosts", text)],
                            "Tool versions, read on each host", ctx.csv(versions, "tool_versions")))
    blocks += _hosts_blocks(c)
    blocks.append(
        Table(
            overview,
            [
                ("number", "#", integer), ("scenario", "scenario", text), ("title", "title", text),
                ("virtualization", "virtualization", text), ("io_path", "I/O path", text),
                ("capture", "capture", text), ("policy", "policy", text),
                ("status", "status", text), ("reason", "reason", text),
                ("resolved_on", "resolved against (hosts)", text),
                ("control_of", "A/A control of", text),
                ("runs", "repetitions", text),
                ("substitutions", "substitutions (knob: requested → effective)", text),
            ],
            "Scenarios as requested, with their status and every substitution",
            ctx.csv(overview, "scenarios"),
        )
    )
    subs = tables.substitutions_table(c.scenarios)
    if subs.empty:
        blocks.append(Para("Substitutions: none; every scenario ran as requested."))
    else:
        blocks.append(
            Table(
                subs,
                [("number", "#", integer), ("scenario", "scenario", text),
                 ("knob", "knob", text), ("requested", "requested", text),
                 ("effective", "effective", text), ("reason", "reason", text)],
                "Substitutions: what the lab could not honour, and what ran instead",
                ctx.csv(subs, "substitutions"),
            )
        )
    if c.warnings:
        blocks += [Para("Notes on the data:"), Bullets(c.warnings)]
    return Section("Campaign metadata", blocks)


def _plan_text(c: Campaign) -> str:
    blocks = c.blocks
    if not blocks:
        return ("shuffled order without blocks (a campaign planned before blocks): scenarios "
                "are compared unpaired")
    n = len(set(blocks.values()))
    return (f"{n} blocks; each block runs every scenario once, in an order drawn from the seed "
            f"{c.parameters.get('seed')}; scenarios are compared paired by block")


def _hosts_blocks(c: Campaign) -> list[Any]:
    blocks: list[Any] = []
    hosts = c.manifest.get("host_states")
    if isinstance(hosts, dict) and hosts:
        blocks.append(Table(_kv(hosts, "host"), [("host", "host", text), ("value", "state", text)],
                            "Host states (from the manifest)"))
    # ping_summary has one row per (scenario, repetition, host): far smaller than rtt
    for name, frame in (("data/ping_summary.parquet", c.ping_summary), ("data/rtt.parquet", c.rtt)):
        if frame is not None and not frame.empty:
            pairs = frame.groupby(["scenario", "host"], observed=True, sort=True).size().index
            seen = pd.Series([str(h) for _, h in pairs], index=[str(s) for s, _ in pairs])
            rows = pd.DataFrame({"scenario": c.scenario_order})
            rows["hosts"] = [
                ", ".join(seen[[s]]) if s in seen.index else None for s in rows["scenario"]
            ]
            blocks.append(Table(rows, [("scenario", "scenario", text),
                                       ("hosts", "sending hosts", text)],
                                f"Hosts that sent probes (from {name})"))
            break
    return blocks
