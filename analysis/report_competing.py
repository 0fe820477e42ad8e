"""The report's section on competing guests and containers (analysis.competing): RTT, loss
and CPU per frame against N (Figures 8 and 9), fairness between the flows, every flow, and
what the guests ran under. Shown only when the campaign has a scenario with N > 1 guests
or a container scenario.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis import competing, plots, tables
from analysis.document import Bullets, Para, Section, Table, integer, num, text
from analysis.report_context import Context

COMPETING_TITLE = "Competing guests and containers"
FIGURES = ("figure8_competing_rtt_loss", "figure9_competing_cpu")
DEFINITIONS = ("competing.kind_n", "competing.flow", "competing.loss",
               "competing.throughput", "competing.rtt", "competing.jain",
               "competing.interval", "competing.cpu", "competing.acceleration")


def shown(ctx: Context) -> bool:
    """Whether the campaign has a scenario with N > 1 guests or a container scenario."""
    return competing.has_competition(ctx.campaign.manifest.get("scenarios") or {})


def _resolved(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("resolved") or {}


def _receivers(entry: dict[str, Any]) -> list[str]:
    """The flows' receivers in flow order, from the manifest's resolution."""
    r = _resolved(entry)
    one = r.get("container") or r.get("guest")
    return list(r.get("containers") or r.get("guests") or ([one] if one else []))


def _with_data(ctx: Context) -> list[str]:
    rtt = ctx.campaign.rtt
    present = set() if rtt is None else {str(s) for s in rtt["scenario"].unique()}
    return [s for s in ctx.campaign.scenario_order if s in present]


def _only(frame: pd.DataFrame | None, names: list[str]) -> pd.DataFrame | None:
    if frame is None:
        return None
    return frame.loc[frame["scenario"].isin(names)]


def data(ctx: Context) -> dict[str, Any]:
    """Every table of the section, computed from the campaign."""
    c = ctx.campaign
    entries = c.manifest["scenarios"]
    kinds = competing.scenario_kinds(entries, c.scenario_order)
    ref = competing.reference(entries, _with_data(ctx), ctx.baseline)
    rows = kinds
    if ref:
        rows = pd.concat([kinds, pd.DataFrame([{
            "scenario": ref, "kind": competing.BARE_METAL, "n": 1,
            "series": competing.BARE_METAL,
            "acceleration": _resolved(entries[ref]).get("virtualization") or "none",
            "runtime": ""}])], ignore_index=True)
    names = list(rows["scenario"])
    flows = competing.flow_results(_only(c.rate, names), _only(c.rtt, names), names)
    flows = competing.name_receivers(flows, {s: _receivers(entries[s]) for s in names})
    hypervisors = {s: (_resolved(entries[s]).get("hosts") or {}).get("hypervisor") or ""
                   for s in names}
    cpu = competing.cpu_by_repetition(_only(c.costs, names), hypervisors)
    reps = competing.repetition_summary(flows, cpu)
    summary = competing.scenario_summary(reps, rows, ctx.options.confidence)
    fair = competing.fairness_by_repetition(flows)
    fairness = kinds[["scenario", "kind", "n"]].merge(
        competing.fairness_summary(fair, ctx.options.confidence, kinds["scenario"]),
        on="scenario", how="left")
    per_flow = competing.flow_summary(flows)
    subs = competing.substitution_summary(tables.substitutions_table(c.scenarios),
                                          kinds["scenario"])
    return {"kinds": kinds, "reference": ref, "flows": flows, "repetitions": reps,
            "summary": summary, "fairness_repetitions": fair, "fairness": fairness,
            "per_flow": per_flow, "substitutions": subs}


def _names(frame: pd.DataFrame) -> str:
    return ", ".join(frame["scenario"])


def acceleration_text(kinds: pd.DataFrame) -> list[str]:
    """What the guests and the containers ran under, in words, from the manifest's
    ``resolved`` entries, and what it means for comparing them."""
    out = []
    guests = kinds.loc[kinds["kind"] == competing.GUESTS]
    containers = kinds.loc[kinds["kind"] == competing.CONTAINERS]
    for accel, group in guests.groupby("acceleration", sort=False):
        words = competing.ACCELERATION_WORDS.get(accel, accel or "not recorded")
        out.append(f"The guests of {_names(group)} ran under {words}: resolved."
                   f"virtualization {accel or 'not recorded'!r} in the manifest.")
    if (guests["acceleration"] == "tcg").any():
        out.append(
            "Under TCG every guest instruction is translated by QEMU on the host's CPU: "
            "guests pay emulation costs that containers, whose processes run in the host's "
            "own kernel, do not. Comparing guests with containers here shows this lab's "
            "TCG guests, not KVM guests: the gap to the containers includes the cost of "
            "emulation, and is not a measure of what KVM guests would show.")
    elif not guests.empty and (guests["acceleration"] == "kvm").all() and not containers.empty:
        out.append("The guests ran under KVM: the comparison is between KVM guests and "
                   "containers.")
    for runtime, group in containers.groupby("runtime", sort=False):
        out.append(f"The containers of {_names(group)} ran in the host's kernel, under "
                   f"{runtime or 'a runtime the manifest does not record'}.")
    return out


def _count(n: int, kind: str) -> str:
    """'1 guest', '2 guests', '1 container', ..."""
    return f"{n} {kind[:-1] if n == 1 else kind}"


def _offered(flows: pd.DataFrame) -> str:
    rates = sorted({float(v) for v in flows["offered_pps"].dropna().round(3)})
    return (", ".join(f"{v:g}" for v in rates) + " frames/s per flow") if rates \
        else "not recorded"


def section(ctx: Context, d: dict[str, Any]) -> Section:
    c = ctx.campaign
    kinds, summary = d["kinds"], d["summary"]
    ref = summary.loc[summary["kind"] == competing.BARE_METAL]
    compared = summary.loc[summary["kind"] != competing.BARE_METAL]
    ctx.csv(d["flows"], "competing_flow_repetitions")
    ctx.csv(d["repetitions"], "competing_repetitions")
    ctx.csv(d["fairness_repetitions"], "competing_fairness_repetitions")
    log_y = plots.wants_log_scale(list(summary["rtt_p50_us"].dropna()),
                                  list(summary["rtt_p99_us"].dropna()))
    subs = d["substitutions"]
    blocks: list[Any] = [
        Para(
            f"{len(kinds)} scenarios put N guests or containers side by side, each "
            "receiving its own flow from one sender at once "
            f"({', '.join(f'{r.scenario}: {_count(r.n, r.kind)}' for r in kinds.itertuples())}); "
            + (f"bare metal ({d['reference']}) is the reference. " if d["reference"]
               else "no bare-metal scenario has data to be the reference. ")
            + "No throughput search ran for N > 1: the loss at the fixed offered rate is "
            "the loss measure. Every flow of every repetition: "
            "tables/competing_flow_repetitions.csv; every repetition's numbers: "
            "tables/competing_repetitions.csv."),
        Para(" ".join(acceleration_text(kinds))),
        Para(
            (f"These scenarios ran with {len(subs)} distinct substitutions, each listed "
             "once below with the scenarios that had it; every substitution with its "
             "reason is in the campaign metadata (tables/substitutions.csv).")
            if not subs.empty else "These scenarios ran without substitutions."),
    ]
    if not subs.empty:
        blocks.append(Bullets([
            f"{r.knob}: {r.requested} → {r.effective} ({r.scenarios})"
            for r in subs.itertuples()]))
        ctx.csv(subs, "competing_substitutions")
    blocks += [
        Table(
            summary,
            [("scenario", "scenario", text), ("kind", "kind", text), ("n", "N", integer),
             ("acceleration", "acceleration", text), ("repetitions", "reps", integer),
             ("rtt_p50_us", "RTT p50 (µs)", num), ("rtt_p99_us", "RTT p99 (µs)", num),
             ("loss_pct", "loss (%)", num), ("loss_pct_ci_low", "loss CI low (%)", num),
             ("loss_pct_ci_high", "loss CI high (%)", num),
             ("throughput_pps", "throughput, all flows (frames/s)", num),
             ("host_cpu_us_per_frame", "host CPU (µs/frame)", num),
             ("qemu_cpu_us_per_frame", "QEMU threads CPU (µs/frame)", num),
             ("container_cpu_us_per_frame", "containers' CPU (µs/frame)", num)],
            "Competing guests and containers per scenario: mean over repetitions (the "
            "intervals of every column are in the CSV)",
            ctx.csv(summary, "competing_scenarios"),
        ),
        ctx.figure(
            plots.plot_competing(compared, ref, log_y=log_y,
                                 title=f"Figure 8 — RTT and loss against N "
                                       f"(campaign {c.campaign_id})"),
            FIGURES[0],
            "Figure 8: left, RTT p50 (solid) and p99 (dashed), each repetition's median over "
            "its flows, in µs, against N; right, the loss of all flows at the fixed offered "
            f"rate ({_offered(d['flows'])}), in %. Points: mean over repetitions; error "
            f"bars: {ctx.level} t interval over repetitions; grey: bare metal."),
        ctx.figure(
            plots.plot_competing_cpu(compared, ref,
                                     title=f"Figure 9 — CPU per frame against N "
                                           f"(campaign {c.campaign_id})"),
            FIGURES[1],
            "Figure 9: µs of CPU per frame sent over all flows, against N: the hypervisor's "
            "host CPU (solid), the guests' QEMU threads or the containers' cgroups (dotted). "
            f"Points: mean over repetitions; error bars: {ctx.level} t interval over "
            "repetitions; grey: bare metal's host CPU."),
        Table(
            d["fairness"],
            [("scenario", "scenario", text), ("kind", "kind", text), ("n", "N", integer),
             ("repetitions", "reps", integer), ("left_out", "left out", integer),
             ("jain_mean", "Jain's index (mean)", num),
             ("jain_ci_low", "CI low", num), ("jain_ci_high", "CI high", num)],
            f"Fairness between the flows: Jain's index over each repetition's flows, mean "
            f"over repetitions with its {ctx.level} t interval",
            ctx.csv(d["fairness"], "competing_fairness"),
        ),
        Table(
            d["per_flow"],
            [("scenario", "scenario", text), ("flow", "flow", integer),
             ("receiver_host", "receiver", text), ("repetitions", "reps", integer),
             ("loss_pct", "loss (%)", num), ("throughput_pps", "throughput (frames/s)", num),
             ("rtt_p50_us", "RTT p50 (µs)", num), ("rtt_p99_us", "RTT p99 (µs)", num)],
            "Every flow: mean over the repetitions of its loss, throughput and RTT p50 and "
            "p99",
            ctx.csv(d["per_flow"], "competing_flows"),
        ),
        ctx.define(*DEFINITIONS, reference=d["reference"] or "none with data",
                   offered=_offered(d["flows"])),
    ]
    return Section(COMPETING_TITLE, blocks)
