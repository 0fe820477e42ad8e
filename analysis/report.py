"""Assemble the report of one campaign: tables, statistics, figures, and the comparison.

``build_report`` reads a campaign (and, for ``compare``, older ones), runs the
statistics, draws the figures and writes ``<results>/report/`` (or ``out``):
``report.md``, a self-contained ``index.html``, ``tables/*.csv`` and
``figures/*.png|svg``. The whole folder is written next to its final place
and swapped in at the end, so a failed run leaves the previous report intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import plots, replication, stats, tables
from analysis import report_verdicts as verdicts
from analysis import throughput as search
from analysis.document import (
    Bullets,
    Definitions,
    Image,
    Para,
    Section,
    Table,
    integer,
    num,
    pvalue,
    share,
    text,
    to_html,
    to_markdown,
    whole,
)
from analysis.load import Campaign, InputError, load_campaign
from analysis.model import rtt_by_repetition, rtt_samples, samples_by_scenario

MARKER = ".kvmnetlab-report"
BOX_PERCENTILES = (1.0, 25.0, 50.0, 75.0, 99.0)
PARAMETER_UNITS = {
    "repetitions": "repetitions",
    "ping_count": "probes",
    "ping_interval_s": "s",
    "ping_payload_bytes": "bytes",
    "seed": "",
}
_SUFFIX_UNITS = {"_s": "s", "_ms": "ms", "_us": "µs", "_bytes": "bytes", "_pps": "packets/s",
                 "_pct": "%", "_bps": "bit/s", "_mbps": "Mbit/s", "_gbps": "Gbit/s"}


class UsageError(ValueError):
    """An analysis option does not fit the campaign (e.g. an unknown baseline)."""


@dataclass(frozen=True)
class Options:
    results: Path
    out: Path | None = None
    margin: stats.Margin = field(default_factory=stats.Margin)
    percentile: float = 90.0
    confidence: float = 0.95
    compare: tuple[Path, ...] = ()
    regression_threshold_pct: float = 10.0
    loss_threshold_pp: float = 1.0
    log_x: bool = False
    baseline: str | None = None
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int | None = None
    percentiles: tuple[float, ...] = stats.DEFAULT_PERCENTILES


@dataclass(frozen=True)
class Outcome:
    out: Path
    comparison: pd.DataFrame

    @property
    def regressed(self) -> pd.DataFrame:
        if self.comparison.empty:
            return self.comparison
        return self.comparison.loc[self.comparison["verdict"] == "regressed"]


def choose_baseline(campaign: Campaign, with_data: Sequence[str], requested: str | None) -> str:
    """The requested scenario; else the first with virtualization 'none'; else the first."""
    if requested is not None:
        if requested not in campaign.scenario_order:
            raise UsageError(f"--baseline {requested!r}: no such scenario in the manifest")
        if requested not in with_data:
            raise UsageError(f"--baseline {requested!r}: scenario has no RTT data")
        return requested
    bare = campaign.scenarios.loc[campaign.scenarios["virtualization"] == "none", "scenario"]
    for name in bare:
        if name in with_data:
            return name
    return with_data[0] if with_data else ""


def build_report(options: Options) -> Outcome:
    campaign = load_campaign(options.results)
    out = Path(options.out) if options.out else campaign.path / "report"
    _check_target(out)
    seed = options.seed if options.seed is not None else int(campaign.parameters.get("seed") or 0)
    order = campaign.scenario_order
    samples = rtt_samples(campaign.rtt, order)
    with_data = list(samples_by_scenario(samples))
    baseline = choose_baseline(campaign, with_data, options.baseline)
    colors = plots.scenario_colors(order)

    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (work / "tables").mkdir()
        (work / "figures").mkdir()
        ctx = _Context(campaign, options, samples, baseline, colors, seed, work,
                       analyse(campaign, options, baseline, seed))
        # The answers first (summary, claims, control), the evidence next, the metadata last.
        sections = [
            verdicts.summary_section(ctx),
            verdicts.claims_section(ctx),
            *verdicts.control_sections(ctx),
            _loss_section(ctx),
            _rtt_section(ctx),
            verdicts.repetitions_section(ctx),
            _figures_section(ctx),
            _distribution_section(ctx),
            _closeness_section(ctx),
            verdicts.pairwise_section(ctx),
            _costs_section(ctx),
            _throughput_section(ctx),
        ]
        comparison = pd.DataFrame(columns=replication.COMPARISON_COLUMNS)
        if options.compare:
            section, comparison = _comparison_section(ctx)
            sections.append(section)
        sections.append(_metadata_section(ctx))
        title = f"kvmnetlab report — campaign {campaign.campaign_id}"
        (work / "report.md").write_text(to_markdown(title, sections), encoding="utf-8")
        (work / "index.html").write_text(to_html(title, sections, work), encoding="utf-8")
        (work / MARKER).write_text("written by python -m analysis\n", encoding="utf-8")
        _swap_in(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Outcome(out, comparison)


@dataclass
class Analysis:
    """Everything the sections share, computed once: the repetition-level statistics."""

    by_rep: dict[str, dict[int, Any]]
    reps: pd.DataFrame  # replication.repetition_summary
    intervals: pd.DataFrame  # replication.scenario_intervals
    pairs: pd.DataFrame  # replication.pairwise_verdicts
    threshold_us: float  # the baseline's pP
    shares: pd.DataFrame  # replication.closeness_by_repetition
    closeness: pd.DataFrame  # replication.closeness_summary + 1 - D
    claims: pd.DataFrame  # replication.judge_claims


def analyse(campaign: Campaign, o: Options, baseline: str, seed: int) -> Analysis:
    order = campaign.scenario_order
    by_rep = rtt_by_repetition(campaign.rtt, order)
    blocks = campaign.blocks
    reps = replication.repetition_summary(by_rep, blocks)
    intervals = replication.scenario_intervals(by_rep, confidence=o.confidence,
                                               n_resamples=o.resamples, seed=seed)
    pairs = replication.pairwise_verdicts(reps, margin=o.margin, confidence=o.confidence,
                                          order=order)
    threshold, shares = replication.closeness_by_repetition(by_rep, baseline, o.percentile,
                                                            blocks)
    close = replication.closeness_summary(shares, o.confidence)
    claims = replication.judge_claims(replication.SEED_CLAIMS, pairs, shares, margin=o.margin,
                                      confidence=o.confidence)
    return Analysis(by_rep, reps, intervals, pairs, threshold, shares, close, claims)


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise UsageError(f"{out}: exists and is not a report folder; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)


def _swap_in(work: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class _Context:
    campaign: Campaign
    options: Options
    samples: pd.DataFrame
    baseline: str
    colors: dict[str, Any]
    seed: int
    work: Path
    result: Analysis

    def csv(self, frame: pd.DataFrame, name: str) -> str:
        frame.to_csv(self.work / "tables" / f"{name}.csv", index=False)
        return name

    def figure(self, fig: Any, name: str, caption: str) -> Image:
        paths = plots.save(fig, self.work / "figures", name)
        return Image(paths["png"].relative_to(self.work), caption)

    @property
    def alpha(self) -> float:
        return 1.0 - self.options.confidence


def _status_cols() -> list[tuple[str, str, Any]]:
    return [("number", "#", integer), ("scenario", "scenario", text), ("status", "status", text)]


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


def _metadata_section(ctx: _Context) -> Section:
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
    overview = tables.scenario_overview(c.scenarios)
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


# --------------------------------------------------------------------------- tables 1, 2


def _loss_section(ctx: _Context) -> Section:
    c = ctx.campaign
    t1 = tables.table1_loss(c.scenarios, c.ping_summary, c.rate)
    spread = [
        ("repetitions", "reps", integer),
        ("mean_pct", "loss mean (%)", num),
        ("min_pct", "min (%)", num),
        ("max_pct", "max (%)", num),
        ("std_pct", "std (%)", num),
    ]
    if c.rate is None:
        columns = [*_status_cols(), *spread, ("sent_packets", "probes sent", integer),
                   ("lost_packets", "probes lost", integer)]
        source = (
            "Loss measured by ping (data/ping_summary.parquet); sender → counter loss "
            "(data/rate.parquet) was not collected in this campaign."
        )
    else:
        columns = [*_status_cols(), ("backend", "backend", text),
                   ("frame_bytes", "frame (bytes)", whole), ("rate_pps", "rate (packets/s)", num),
                   *spread, ("flagged_repetitions", "flagged reps", integer),
                   ("sent_frames", "frames sent", integer),
                   ("lost_frames", "frames lost", integer),
                   ("ping_loss_mean_pct", "ping loss mean (%)", num)]
        source = (
            "Loss measured from sender to counter (data/rate.parquet), one row per backend, "
            "frame size and rate; ping's mean loss is shown beside it."
        )
    return Section(
        "Table 1 — packet loss per scenario",
        [
            Para(source),
            Table(t1, columns, "Table 1: loss (%) per scenario", ctx.csv(t1, "table1_loss")),
            Definitions([
                ("loss of a repetition",
                 "100 · (sent - received) / sent, pooled over the repetition's hosts "
                 "(or flows)."),
                ("flagged reps", "repetitions whose counter saw more frames of the flow "
                 "than the sender sent (foreign or duplicated frames matching the filter): "
                 "their loss cannot be measured, so they are left out of reps, of the loss "
                 "statistics and of the frame totals; the notes on the data name them."),
                ("loss mean", "arithmetic mean of the repetitions' losses (each repetition "
                 "weighs the same)."),
                ("backend", "the sending and counting tools: pf_ring = pfsend -> pfcount; "
                 "trafgen_tcpdump = netsniff-ng's trafgen -> tcpdump; trafgen_pfcount and "
                 "pfsend_tcpdump where only one end has pf_ring.ko loaded. Every counter "
                 "counts only the generated flow (BPF 'udp and dst port 3000'). pfsend "
                 "paces its frames evenly; trafgen (-b <rate>pps, netsniff-ng 0.6.8) sends "
                 "each second's frames as one burst, so on a trafgen backend this loss is "
                 "the loss of one-second bursts of that many frames, not of an even rate: "
                 "the throughput search (below) sends evenly spaced frames."),
                ("min, max", "smallest and largest repetition loss."),
                ("std", "sample standard deviation of the repetition losses (n - 1 in the "
                 "denominator); empty with a single repetition."),
            ]),
        ],
    )


def _rtt_section(ctx: _Context) -> Section:
    c = ctx.campaign
    t2 = tables.table2_rtt(c.scenarios, ctx.samples, c.rtt)
    return Section(
        "Table 2 — round-trip time per scenario",
        [
            Table(
                t2,
                [*_status_cols(), ("repetitions", "reps", integer),
                 ("probes", "probes sent", integer), ("n", "n (answered)", integer),
                 ("rtt_mean_us", "RTT mean (µs)", num), ("rtt_std_us", "RTT std (µs)", num)],
                "Table 2: ICMP echo round-trip time (µs) per scenario",
                ctx.csv(t2, "table2_rtt"),
            ),
            Definitions([
                ("n", "answered probes, pooled over all repetitions and hosts; unanswered "
                 "probes count as loss, not as RTT."),
                ("RTT mean", "arithmetic mean of the n round-trip times, in microseconds."),
                ("RTT std", "sample standard deviation of the n round-trip times "
                 "(n - 1 in the denominator), in microseconds: the spread of single probes, "
                 "not the uncertainty of the mean (see the confidence intervals below)."),
            ]),
        ],
    )


# --------------------------------------------------------------------------- figures


def _figures_section(ctx: _Context) -> Section:
    c, o = ctx.campaign, ctx.options
    box = stats.percentiles(ctx.samples, BOX_PERCENTILES)  # with min_us, max_us
    box = c.scenarios[["scenario", "number", "status"]].merge(box, on="scenario", how="left")
    box["n"] = box["n"].fillna(0).astype(int)
    box["label"] = [
        f"{'' if pd.isna(r.number) else f'{r.number}. '}{r.scenario}\n"
        + (f"(n={r.n:,})" if r.n else f"({r.status})")
        for r in box.itertuples()
    ]
    params = c.parameters
    where = f"campaign {c.campaign_id}"
    if "ping_interval_s" in params:
        where += f", ping every {params['ping_interval_s']:g} s"
    log_y = plots.wants_log_scale(box["p1_us"].dropna(), box["p99_us"].dropna())
    fig1 = plots.plot_distributions(
        box, colors=ctx.colors, title=f"Figure 1 — RTT per scenario\n{where}", log_y=log_y
    )
    points = stats.ecdf_points(ctx.samples)
    threshold = None
    if ctx.baseline:
        x = samples_by_scenario(ctx.samples)[ctx.baseline]
        threshold = (
            f"closeness threshold:\np{o.percentile:g} of {ctx.baseline!r}",
            float(stats.quantile_sorted(x, o.percentile / 100)),
        )
    log_x = o.log_x or plots.wants_log_scale(box["min_us"].dropna(), box["max_us"].dropna())
    fig2 = plots.plot_cdf(
        points, order=c.scenario_order, colors=ctx.colors, log_x=log_x, threshold=threshold,
        title=f"Figure 2 — CDF of RTT per scenario\n{where}",
    )
    box_csv = ctx.csv(box.drop(columns="label"), "figure1_box")
    ctx.csv(points, "figure2_cdf_points")
    return Section(
        "Figures 1 and 2 — RTT distributions",
        [
            ctx.figure(
                fig1, "figure1_rtt_distributions",
                "Figure 1: RTT per scenario. Box: 25th to 75th percentile; black line: median; "
                "whiskers: 1st and 99th percentile; white diamond: mean (value printed beside "
                "it); probes beyond the whiskers are not drawn (see the percentile table). "
                + ("Logarithmic y axis: the scenarios differ by more than a factor of 20. "
                   if log_y else "")
                + f"Numbers behind it: tables/{box_csv}.csv.",
            ),
            ctx.figure(
                fig2, "figure2_rtt_cdf",
                "Figure 2: empirical cumulative distribution of RTT per scenario, "
                "P(RTT ≤ x) over all answered probes. A curve further left is faster; "
                "the dashed line is the baseline percentile used for closeness. "
                + (("Logarithmic x axis (--log-x). " if o.log_x else "Logarithmic x axis: the "
                    "scenarios differ by more than a factor of 20. ") if log_x else "")
                + "Points: tables/figure2_cdf_points.csv (exact points of the ECDF).",
            ),
        ],
    )


# --------------------------------------------------------------------------- statistics


def _distribution_section(ctx: _Context) -> Section:
    o = ctx.options
    pct = stats.percentiles(ctx.samples, o.percentiles)
    iv = ctx.result.intervals
    pct_cols = [("scenario", "scenario", text), ("n", "n", integer),
                ("min_us", "min (µs)", num)]
    pct_cols += [(stats.percentile_column(p), f"p{p:g} (µs)", num) for p in o.percentiles]
    pct_cols += [("max_us", "max (µs)", num)]
    level = f"{100 * o.confidence:g} %"
    return Section(
        "Percentiles and confidence intervals",
        [
            Para("Percentiles describe one scenario's distribution of single probes, pooled "
                 "over its repetitions: a per-probe statistic, and the right one for that. The "
                 "intervals below are about the scenario, so they treat the repetition as the "
                 "unit."),
            Table(pct, pct_cols, "RTT percentiles per scenario (µs), all answered probes",
                  ctx.csv(pct, "percentiles")),
            Definitions([
                ("pX", "the X-th percentile of the answered probes' RTT, by linear "
                 "interpolation between order statistics (Hyndman-Fan type 7, numpy's default): "
                 "with the n values sorted, position h = (n - 1)·X/100, value "
                 "x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋])."),
            ]),
            Table(
                iv,
                [("scenario", "scenario", text), ("statistic", "statistic", text),
                 ("repetitions", "reps", integer), ("estimate_us", "estimate (µs)", num),
                 ("t_low_us", f"t {level} CI low", num), ("t_high_us", f"t {level} CI high", num),
                 ("boot_low_us", f"two-level bootstrap {level} low", num),
                 ("boot_high_us", f"two-level bootstrap {level} high", num),
                 ("between_rep_sd", "between-repetition sd", num)],
                f"{level} confidence intervals over repetitions (µs)",
                ctx.csv(iv, "intervals"),
            ),
            Definitions([
                ("median (typical repetition median)",
                 "the geometric mean of the repetitions' median RTTs: exp of the mean of their "
                 "logs. Its between-repetition sd is the sd of those logs (about the "
                 "coefficient of variation from one repetition to the next)."),
                ("mean", "the mean of the repetitions' mean RTTs (each repetition weighs the "
                 "same); between-repetition sd in µs."),
                ("t CI", f"mean ± t(df = R - 1) · sd / √R over the R repetitions (on the log "
                 f"scale for the median, then back-transformed): the {level} interval that "
                 "holds when repetitions vary at random around the scenario's value. It is "
                 "wide with few repetitions (t = 4.30 for R = 3), because that is what three "
                 "repetitions can tell."),
                ("two-level bootstrap CI",
                 f"B = {o.resamples} replicates, seed {ctx.seed} (a stream per scenario name); "
                 "each draws R repetitions with replacement and, within each drawn repetition, "
                 "a resample of its probes with replacement (median: exactly, from order "
                 "statistics; mean: as the per-probe bootstrap), and recomputes the statistic. "
                 f"The interval runs from the {50 * (1 - o.confidence):g}th to the "
                 f"{100 - 50 * (1 - o.confidence):g}th percentile of the replicates. With "
                 "few repetitions it is too narrow: it only sees the R repetitions at hand "
                 "(R = 3 gives 10 distinct sets) and does not widen as t does. The verdicts "
                 "use the t interval."),
            ]),
        ],
    )


def _closeness_section(ctx: _Context) -> Section:
    o = ctx.options
    r = ctx.result
    p = f"p{o.percentile:g}"
    if r.closeness.empty:
        return Section("Closeness to the baseline", [Para("No baseline with RTT data.")])
    pooled = stats.closeness(ctx.samples, ctx.baseline, o.percentile)
    close = r.closeness.merge(pooled[["scenario", "ks_distance", "ks_similarity"]],
                              on="scenario", how="left")
    level = f"{100 * o.confidence:g} %"
    return Section(
        "Closeness to the baseline",
        [
            Para(f"Baseline: {ctx.baseline}; its {p} over all its probes is "
                 f"{num(r.threshold_us)} µs."),
            Table(
                close,
                [("scenario", "scenario", text), ("repetitions", "reps", integer),
                 ("share", f"share ≤ baseline {p}, mean over reps", share),
                 ("share_ci_low", f"{level} CI low", share),
                 ("share_ci_high", f"{level} CI high", share),
                 ("share_min", "lowest rep", share), ("share_max", "highest rep", share),
                 ("ks_similarity", "1 - D (all probes)", num)],
                "Closeness of each scenario to the baseline",
                ctx.csv(close, "closeness"),
            ),
            Definitions([
                (f"share ≤ baseline {p}",
                 f"for each repetition, the fraction of its answered probes whose RTT is at or "
                 f"below the baseline's {p} ({num(r.threshold_us)} µs, over all the baseline's "
                 "probes); the scenario's value is the mean over its repetitions, with a t "
                 "interval over repetitions (df = R - 1, clipped to 0-100 %). The baseline "
                 f"scores about {o.percentile:g} % by construction; a scenario as fast as the "
                 "baseline scores the same, a slower one less. This is the reading of the seed "
                 "study's 'close to the baseline X % of the time'."),
                ("lowest rep, highest rep", "the smallest and largest repetition's share."),
                ("1 - D", "1 minus the Kolmogorov-Smirnov distance max over x of "
                 "|F_s(x) - F_b(x)| between the scenario's and the baseline's empirical CDFs "
                 "over all probes (Figure 2): a description of the shapes (1: identical, 0: "
                 "no overlap), not a test."),
            ]),
        ],
    )


def _costs_section(ctx: _Context) -> Section:
    c = ctx.campaign
    title = "Per-packet costs"
    if c.costs is None:
        return Section(title, [Para("Per-packet costs (data/costs.parquet): not collected in "
                                    "this campaign.")])
    costs = tables.costs_table(c.scenarios, c.costs)
    totals = tables.costs_table(c.scenarios, c.costs, by_host=False)
    ctx.csv(totals, "costs_all_hosts")
    fig = plots.plot_costs(totals, colors=ctx.colors,
                           title=f"Figure 3 — per-packet costs per scenario "
                                 f"(campaign {c.campaign_id})")
    return Section(
        title,
        [
            Table(
                costs,
                [*_status_cols(), ("metric", "metric", text), ("host", "host", text),
                 ("unit", "unit", text),
                 ("repetitions", "reps", integer), ("mean", "mean", num), ("min", "min", num),
                 ("max", "max", num), ("std", "std", num)],
                "Per-packet costs per scenario and host (mean over repetitions; unit per row)",
                ctx.csv(costs, "costs"),
            ),
            Definitions([
                ("metric", "a counter's change over the counter window (the load at rate) "
                 "divided by the frames sent at rate, as the collector derived it: "
                 "cpu_us_per_packet: busy CPU time of the host, all cores (/proc/stat, "
                 "non-idle non-iowait ticks / CLK_TCK), in µs per frame; "
                 "interrupts_per_packet: the host's interrupts per frame; "
                 "qemu_cpu_us_per_packet: user+system CPU time of all QEMU threads in µs "
                 "per frame; exits_per_packet: KVM exits of the VM per frame. Host-wide "
                 "counters include everything the host ran in the window: on the embedded "
                 "lab the namespace hosts and the controller share one kernel, so "
                 "Ansible's own work is in them."),
                ("host", "the host whose counters gave the value (qemu: the QEMU process's "
                 "threads; kvm: the VM's KVM exit counter)."),
                ("mean, min, max, std", "over repetitions; std is the sample standard "
                 "deviation (n - 1)."),
            ]),
            ctx.figure(fig, "figure3_costs",
                       "Figure 3: per-packet costs, summed over the hosts that report each "
                       "metric (tables/costs_all_hosts.csv); bar: mean over repetitions, "
                       "error bars: smallest and largest repetition."),
        ],
    )


# --------------------------------------------------------------------------- throughput

THROUGHPUT_TITLE = "Throughput (NDR/PDR) and latency under load"


def _search_settings(c: Campaign) -> dict[str, Any]:
    """The search's settings: from its table where each search recorded them, else from
    the campaign parameters (None when neither has them: an older campaign)."""
    p, t = c.parameters, c.throughput
    out = {name: p.get(f"search_{name}") for name in (
        "min_pps", "max_pps", "granularity", "pdr_ratio", "trial_s", "validation_s",
        "validations", "max_trials", "tolerance", "load_s", "load_fractions")}
    if t is not None and not t.empty:
        out.update(min_pps=float(t["min_pps"].min()), max_pps=float(t["max_pps"].max()),
                   granularity=float(t["granularity"].iloc[0]),
                   pdr_ratio=float(t["pdr_loss_ratio"].iloc[0]))
    return out


def _setting(value: Any, fmt: str = "{:g}") -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, list | tuple):
        return ", ".join(fmt.format(v) for v in value)
    return fmt.format(value)


def _settings_text(s: dict[str, Any]) -> str:
    """The search's settings in words, those the campaign recorded."""
    parts = []
    if s["min_pps"] is not None and s["max_pps"] is not None:
        parts.append(f"offered rates from {s['min_pps']:g} to {s['max_pps']:g} frames/s")
    if s["granularity"] is not None:
        parts.append(f"resolved to a relative width of {s['granularity']:g}")
    if s["trial_s"] is not None:
        parts.append(f"trials of {s['trial_s']:g} s")
    if s["validations"] is not None:
        parts.append(f"{s['validations']} validation trial(s)"
                     + (f" of {s['validation_s']:g} s" if s["validation_s"] is not None
                        else "") + " at each rate found")
    if s["max_trials"] is not None:
        parts.append(f"at most {s['max_trials']} trials per search")
    if s["tolerance"] is not None:
        parts.append(f"generator tolerance {100 * s['tolerance']:g} %")
    return ", ".join(parts) if parts else "settings not recorded"


def _throughput_section(ctx: _Context) -> Section:
    c, o = ctx.campaign, ctx.options
    if c.throughput is None and c.search_trials is None:
        return Section(THROUGHPUT_TITLE, [Para(
            "No throughput search in this campaign (data/throughput.parquet and "
            "data/search_trials.parquet absent or empty).")])
    level = f"{100 * o.confidence:g} %"
    s = _search_settings(c)
    pdr_pct = f"{100 * s['pdr_ratio']:g} %" if s["pdr_ratio"] is not None else "the PDR ratio"
    tolerance = (f"{100 * s['tolerance']:g} %" if s["tolerance"] is not None
                 else "the tolerance")
    table = search.ndr_pdr_display(search.ndr_pdr_table(c.scenarios, c.throughput,
                                                        o.confidence))
    results = search.search_results(c.throughput)
    ctx.csv(results, "throughput_repetitions")
    blocks: list[Any] = [
        Para(
            "A binary search per scenario and repetition, run after the counter window (so "
            "it never overlaps the load whose per-packet costs Table 1's rate measures), "
            "with the same flow, tools and frame size as Table 1's rate (backend): "
            + _settings_text(s) + ". Every search's value: tables/throughput_repetitions.csv."),
        Table(
            table,
            [*_status_cols(), ("frame_bytes", "frame (bytes)", whole),
             ("backend", "backend", text), ("rate", "rate", text),
             ("searches", "searches", integer), ("with_result", "n (with a rate)", integer),
             ("mean_kpps_text", "mean (kframes/s)", text),
             ("ci_kpps_text", f"{level} CI (kframes/s)", text),
             ("mean_mbps_text", "mean (Mbit/s)", text),
             ("ci_mbps_text", f"{level} CI (Mbit/s)", text),
             ("excluded", "left out", text), ("statuses", "how the searches ended", text),
             ("per_repetition", "per repetition (kframes/s)", text)],
            f"Table 3: NDR and PDR (≤ {pdr_pct} loss) per scenario, mean over repetitions",
            ctx.csv(table.drop(columns=["mean_kpps_text", "ci_kpps_text", "mean_mbps_text",
                                        "ci_mbps_text"]), "throughput_ndr_pdr"),
        ),
        Definitions([
            ("NDR (no-drop rate)", "the highest offered rate at which no frame of the flow "
             "was lost, below the lowest offered rate that lost any, the two within the "
             f"relative granularity ({_setting(s['granularity'])}: upper / lower - 1), "
             "confirmed by the validation trial(s) at that rate (a rate that passed once "
             "and lost in validation counts as lost)."),
            ("PDR (partial-drop rate)", f"the same with a loss ratio (lost / sent) of at "
             f"most {pdr_pct} (the PDR ratio) instead of none."),
            ("valid trial", "a trial whose generator sent the offered rate within "
             f"{tolerance} (achieved rate = frames sent / the sender's own time: it fell "
             "neither short of the offered rate nor overshot it by more than the tolerance) "
             "and whose counter saw no more frames than were sent. An invalid trial never "
             "counts as loss: it is run again, or, when the generator fell short while "
             "sending flat out, it lowers the rate the search may offer to what the "
             "generator achieved."),
            ("mean", "the arithmetic mean of the repetitions' rates (each repetition is one "
             "search and weighs the same; trials are never pooled across repetitions); n "
             "counts the repetitions with a rate."),
            (f"{level} CI", "mean ± t(df = n - 1) · sd / √n over the n repetitions' rates "
             "(Student t; the repetition is the unit of replication), the lower end clipped "
             "at 0; — with n < 2."),
            ("kframes/s, Mbit/s", "offered frames per second / 1000; and the frames' bit "
             "rate, rate · frame bytes · 8 / 10⁶, counting the frame as generated (without "
             "the 4-byte CRC, the 8-byte preamble and the 12-byte inter-frame gap, which "
             "add (4 + 8 + 12) · 8 bits per frame on the wire)."),
            ("≥", "a lower bound: the rate of at least one repetition is one, because "
             "nothing lost up to the maximum searched (at the maximum searched), the "
             "generator could not send faster (generator-limited), or the trials ran out "
             "before the bounds were resolved (out of trials); the true rate may be higher, "
             "and the mean and its interval are then of lower bounds."),
            ("< min, left out", "a repetition whose search lost even at the minimum rate "
             "searched has no NDR (PDR): it is shown as < min (in kframes/s) and left out "
             "of n, the mean and the interval, counted under left out; so is a repetition "
             "whose trials ran out before any rate passed."),
        ]),
    ]
    calibration = search.generator_calibration(c.search_trials, c.throughput)
    if not calibration.empty:
        blocks += [
            Table(
                calibration,
                [("host", "sending host", text), ("backend", "backend", text),
                 ("frame_bytes", "frame (bytes)", whole), ("searches", "searches", integer),
                 ("trials", "trials", integer), ("invalid", "invalid", integer),
                 ("fell_short", "fell short", integer), ("overshot", "overshot", integer),
                 ("other_invalid", "other invalid", integer),
                 ("max_achieved_pps", "max achieved (frames/s)", num),
                 ("generator_max_pps", "limit learned (frames/s)", num),
                 ("searches_limited", "searches limited", integer)],
                "Table 4: generator calibration, per sending host",
                ctx.csv(calibration, "throughput_generator"),
            ),
            Definitions([
                ("max achieved", "the highest achieved rate (frames sent / the sender's own "
                 "time) over all the host's trials in this campaign, valid or not, load "
                 "points included: what its generator was seen to do with these frames."),
                ("fell short, overshot", "invalid trials whose generator sent more than "
                 f"{tolerance} below (fell short) or above (overshot) the offered rate."),
                ("other invalid", "invalid for another reason: the counter saw more frames "
                 "than were sent, a tool's closing lines were missing, or a tool failed."),
                ("limit learned", "the highest rate a search saw the generator reach when it "
                 "fell short while sending flat out; the search then offers no more."),
                ("searches limited", "searches whose NDR or PDR is generator-limited: the "
                 "generator, not the path measured, ended them."),
            ]),
        ]
    points = search.trial_points(c.search_trials)
    blocks.append(_trial_figure(ctx, points, results, s["pdr_ratio"]))
    blocks += _latency_blocks(ctx, s, level)
    return Section(THROUGHPUT_TITLE, blocks)


def _trial_figure(ctx: _Context, points: pd.DataFrame, results: pd.DataFrame,
                  pdr_ratio: float | None) -> Image:
    c = ctx.campaign
    invalid = 0
    if c.search_trials is not None:
        t = c.search_trials
        invalid = int((~t["valid"].astype(bool) & (t["phase"].astype(str) != "load")).sum())
    fig = plots.plot_search_trials(
        points, results, order=c.scenario_order, colors=ctx.colors, pdr_ratio=pdr_ratio,
        title=f"Figure 6 — loss against offered load, every valid trial\n"
              f"campaign {c.campaign_id}")
    csv = ctx.csv(points, "figure6_search_trials")
    return ctx.figure(
        fig, "figure6_search_trials",
        "Figure 6: loss (%) of every valid search (circle) and validation (square) trial "
        "against its offered rate (kframes/s, log scale), all repetitions, coloured by "
        "scenario; dotted lines: each repetition's NDR, dashed: its PDR; grey: the PDR "
        f"ratio. The loss axis is linear below 0.1 % and logarithmic above. {invalid} invalid "
        f"trial(s) are not drawn (no loss is measured on them). Points: tables/{csv}.csv.")


def _latency_blocks(ctx: _Context, s: dict[str, Any], level: str) -> list[Any]:
    c, o = ctx.campaign, ctx.options
    if c.rtt_load is None:
        return [Para("RTT under load (data/rtt_load.parquet): not collected in this campaign "
                     "(its searches did not probe RTT under load).")]
    idle_loss = tables.ping_loss_per_repetition(c.ping_summary)
    latency = search.latency_under_load(c.scenarios, c.rtt_load, ctx.result.reps, idle_loss,
                                        o.confidence)
    shown = latency.assign(
        load=["idle (the seed's ping)" if f == 0 else f"{100 * f:g} % of the PDR"
              for f in latency["fraction"]],
        p50_ci=[search.interval_text(lo, hi) for lo, hi in
                zip(latency["p50_ci_low_us"], latency["p50_ci_high_us"], strict=True)],
        p99_ci=[search.interval_text(lo, hi) for lo, hi in
                zip(latency["p99_ci_low_us"], latency["p99_ci_high_us"], strict=True)])
    excluded = int(latency["excluded_invalid"].sum())
    log_y = plots.wants_log_scale(latency["p50_us"].dropna(), latency["p99_us"].dropna())
    fig = plots.plot_latency_under_load(
        latency, order=c.scenario_order, colors=ctx.colors, log_y=log_y,
        title=f"Figure 7 — RTT under load, mean of the repetitions' percentiles\n"
              f"campaign {c.campaign_id}")
    return [
        Table(
            shown,
            [("scenario", "scenario", text), ("load", "load", text),
             ("repetitions", "n (reps)", integer),
             ("excluded_invalid", "invalid load points left out", integer),
             ("offered_kpps", "offered (kframes/s)", num), ("p50_us", "RTT p50 (µs)", num),
             ("p50_ci", f"{level} CI (µs)", text), ("p99_us", "RTT p99 (µs)", num),
             ("p99_ci", f"{level} CI (µs)", text), ("loss_pct", "probe loss (%)", num)],
            "Table 5: RTT under load per scenario and load (fraction of the PDR)",
            ctx.csv(latency, "throughput_rtt_load"),
        ),
        Definitions([
            ("latency under load", "ICMP echo probes (ping, every "
             f"{_setting(c.parameters.get('ping_interval_s'))} s) sent while the generated "
             "flow runs at the stated fractions of the repetition's PDR "
             f"({_setting(s['load_fractions'])}), for {_setting(s['load_s'])} s each, the "
             "load started before the probes and stopped after them; idle: the seed's ping "
             "of the same repetition (data/rtt.parquet), without generated load. When the "
             "PDR is a lower bound (≥ in Table 3), so are the loads."),
            ("invalid load points left out", "load points whose load was an invalid trial "
             "(the generator missed the offered rate by more than the tolerance, or the "
             "counter saw more frames than were sent): their probes did not see the stated "
             f"load, so they are left out ({excluded} in this campaign)."),
            ("RTT p50, p99", "per repetition, the 50th and 99th percentile (type 7) of its "
             "answered probes at that load; the table shows the mean over the n repetitions "
             f"and its {level} t interval (df = n - 1, the lower end clipped at 0); — with "
             "n < 2."),
            ("offered", "the mean over the repetitions of the load point's offered rate."),
            ("probe loss", "per repetition, 100 · unanswered / sent probes; the mean over "
             "the repetitions."),
        ]),
        ctx.figure(
            fig, "figure7_rtt_under_load",
            "Figure 7: RTT p50 (solid) and p99 (dashed) against the load in % of the PDR "
            "(0: idle, the seed's ping), one colour per scenario; error bars: the "
            f"{level} t interval over repetitions. "
            + ("Logarithmic y axis: the values span more than a factor of 20. " if log_y
               else "")
            + "Numbers: tables/throughput_rtt_load.csv."),
    ]


# --------------------------------------------------------------------------- comparison


def _comparison_section(ctx: _Context) -> tuple[Section, pd.DataFrame]:
    c, o = ctx.campaign, ctx.options
    new_loss = tables.loss_per_repetition(c.ping_summary, c.rate)
    trend = [_trend_rows(c, ctx.result.by_rep, new_loss, o)]
    frames, notes = [], []
    for path in o.compare:
        older = load_campaign(path)
        old_by_rep = rtt_by_repetition(older.rtt, older.scenario_order)
        old_summary = replication.repetition_summary(old_by_rep)
        old_loss = tables.loss_per_repetition(older.ping_summary, older.rate)
        frames.append(
            replication.compare_campaigns(
                ctx.result.reps, old_summary, new_loss, old_loss, older=older.campaign_id,
                threshold_pct=o.regression_threshold_pct, loss_threshold_pp=o.loss_threshold_pp,
                confidence=o.confidence,
            )
        )
        trend.append(_trend_rows(older, old_by_rep, old_loss, o))
        notes += _parameter_differences(c, older)
        if (older.rate is None) != (c.rate is None):
            notes.append(f"{older.campaign_id}: loss sources differ (ping vs rate); loss "
                         "comparison mixes them")
        del older, old_by_rep
    comparison = pd.concat(frames, ignore_index=True)
    # the current campaign's points are flagged when they regressed against any older one
    flags = comparison.groupby("scenario")[["median_regressed", "loss_regressed"]].any()
    for column in flags:
        trend[0][column] = trend[0]["scenario"].map(flags[column]).fillna(False).astype(bool)
    trend_frame = pd.concat(trend, ignore_index=True)
    for column in flags:
        trend_frame[column] = trend_frame[column].fillna(False).astype(bool)
    trend_frame = trend_frame.sort_values(["started_at", "campaign"], kind="stable")
    fig = plots.plot_trend(trend_frame, colors=ctx.colors,
                           title=f"Figure 4 — typical median RTT and loss per campaign\n"
                                 f"(regression: median +{o.regression_threshold_pct:g} % or "
                                 f"loss +{o.loss_threshold_pp:g} points, significant)")
    ctx.csv(trend_frame, "trend")
    level = f"{100 * o.confidence:g} %"
    blocks: list[Any] = [
        Para(f"Campaign {c.campaign_id} compared with "
             + ", ".join(f.iloc[0]["older"] for f in frames if not f.empty)
             + ", repetition by repetition: each campaign's repetitions are its sample, as "
               "in every other comparison of this report."),
    ]
    if notes:
        blocks += [Para("Not like for like:"), Bullets(notes)]
    blocks += [
        Table(
            comparison,
            [("scenario", "scenario", text), ("older", "older campaign", text),
             ("repetitions_old", "reps then", integer), ("repetitions_new", "reps now", integer),
             ("median_old_us", "median then (µs)", num), ("median_new_us", "median now (µs)", num),
             ("median_change_pct", "change (%)", num),
             ("median_ci_low_pct", f"{level} CI low (%)", num),
             ("median_ci_high_pct", f"{level} CI high (%)", num),
             ("median_p_holm", "p (Holm)", pvalue),
             ("loss_old_pct", "loss then (%)", num), ("loss_new_pct", "loss now (%)", num),
             ("loss_change_pp", "change (points)", num), ("loss_p_holm", "p (Holm)", pvalue),
             ("verdict", "verdict", text), ("note", "note", text)],
            "Change against earlier campaigns",
            ctx.csv(comparison, "comparison"),
        ),
        Definitions([
            ("median then, now", "each campaign's typical median: the geometric mean of the "
             "scenario's repetition medians (µs)."),
            ("change (%)", "100 · (exp(d) - 1), d = mean log repetition median now - then; "
             f"with its {level} Welch t interval."),
            ("median p", "Welch's t test (unequal variances, Welch-Satterthwaite df) on the log "
             "repetition medians of the two campaigns: the repetition is the unit, so a "
             "campaign's thousands of probes do not make noise between repetitions look "
             "significant. Holm-corrected over the scenarios of each older campaign."),
            ("loss", "mean over repetitions of each repetition's loss, 100 · lost / sent "
             "(sender → counter when data/rate.parquet exists, else ping; a flagged "
             "repetition, with more frames counted than sent, is left out); p from Welch's t "
             "test on the repetition losses (p = 1 when every repetition of both is equal), "
             "Holm-corrected likewise."),
            ("verdict", f"regressed: median up by more than {o.regression_threshold_pct:g} % or "
             f"loss up by more than {o.loss_threshold_pp:g} points, with Holm p < "
             f"{ctx.alpha:g}; improved: the same downwards; not comparable: the scenario has "
             "data in only one of the two campaigns. A scenario with one repetition on a side "
             "is not tested (note)."),
        ]),
        ctx.figure(fig, "figure4_trend",
                   "Figure 4: typical median RTT (geometric mean of repetition medians, with "
                   f"its {level} t interval over repetitions) and mean loss per campaign, oldest "
                   f"to newest by start time; a red ring marks a scenario of {c.campaign_id} "
                   "that regressed against at least one earlier campaign."),
    ]
    return Section("Comparison with earlier campaigns", blocks), comparison


def _trend_rows(
    campaign: Campaign, by_rep: dict, loss: pd.DataFrame, o: Options
) -> pd.DataFrame:
    med = replication.scenario_intervals(by_rep, confidence=o.confidence, bootstrap=False)
    med = med.loc[med["statistic"] == "median"]
    loss_pct = loss.groupby("scenario", sort=False)["loss_pct"].mean()
    out = pd.DataFrame({"scenario": campaign.scenario_order})
    out = out.merge(med[["scenario", "estimate_us", "t_low_us", "t_high_us"]], how="left")
    out = out.rename(columns={"estimate_us": "median_us", "t_low_us": "ci_low_us",
                              "t_high_us": "ci_high_us"})
    out["loss_pct"] = out["scenario"].map(loss_pct).astype(float)
    out.insert(0, "started_at", campaign.started_at)
    out.insert(0, "campaign", campaign.campaign_id)
    return out


def _parameter_differences(new: Campaign, old: Campaign) -> list[str]:
    a, b = new.parameters, old.parameters
    keys = sorted((set(a) | set(b)) - {"seed"})
    return [
        f"{old.campaign_id}: parameter {k} was {b.get(k)!r}, now {a.get(k)!r}"
        for k in keys
        if a.get(k) != b.get(k)
    ]


__all__ = ["InputError", "Options", "Outcome", "UsageError", "build_report"]
