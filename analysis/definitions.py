"""Every definition the report shows, in one place: what each statistic means, and its unit.

``TERMS`` maps a key to a term and its meaning. Both are templates: ``{name}``
fields are filled from the analysis settings (``wording``: the confidence
level, alpha, the margin, the closeness percentile, the bootstrap, the
baseline, the comparison thresholds) and from facts a section passes when it
shows them (a threshold in µs, a count). A section shows a list of keys
(``define``) beside the table or figure that uses them, and the section
declaration (``analysis.sections``) names the keys each section relies on.

``DASHBOARD_TERMS`` holds the trend dashboard's statistics the same way
(``analysis.dashboard`` shows all of them, in order, at the end of its page),
their fields filled from its windows and the change-point detector's settings;
``define`` takes them with ``terms=DASHBOARD_TERMS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from analysis import changepoints, history
from analysis.between_nights import PRIOR
from analysis.document import Definitions
from analysis.replication import POWER_TARGET

# How a pair of scenarios is compared, by the scale of the equivalence margin.
SCALE_WORDS = {
    "log": "the log of each repetition's median RTT, so differences are ratios",
    "us": "each repetition's median RTT in µs",
}

TERMS: dict[str, tuple[str, str]] = {
    # outcome
    'outcome.the_unit': (
        'the unit',
        'the repetition: a scenario is compared through one number per repetition, '
        'on {scale}. Probes of one repetition share its circumstances and are not '
        'independent samples of the scenario; the spread between repetitions is '
        'what a verdict has to beat.',
    ),
    'outcome.paired_by_block': (
        'paired by block',
        'when the campaign ran in blocks (each block runs every scenario once, in a '
        'random order), the difference of two scenarios is taken within each block, '
        'then averaged over blocks: drift over the campaign cancels. t test with df '
        "= blocks - 1. Without blocks: Welch's unpaired t test.",
    ),
    'outcome.different': (
        'different',
        'the two-sided t test of no difference has a Holm-adjusted p < {alpha:g} '
        '(Holm over the pairs of interest; a pair with the baseline or with an A/A '
        'control is judged on its own p, at alpha itself).',
    ),
    'outcome.equivalent': (
        'equivalent',
        'the TOST (two one-sided t tests, Schuirmann) shows the difference lies '
        'within the margin, {margin}, with Holm-adjusted p < {alpha:g}; equivalently, '
        'the (1 - 2·alpha) interval lies inside the margin. A pair can be both when '
        'a real difference is smaller than the margin: it is reported equivalent, '
        'with that note.',
    ),
    'outcome.inconclusive': (
        'inconclusive',
        'neither: the repetitions vary too much, or are too few, to tell. Not '
        'evidence of sameness.',
    ),
    'outcome.repetitions_to_settle': (
        'repetitions to settle',
        'for an inconclusive pair: the number of repetitions (blocks) that would '
        'settle it either way: the larger of the n at which the TOST reaches '
        '{power_target:.0%} power if the true difference is 0 and the n at which the '
        'difference test does if the true difference is as large as the margin, with '
        'the observed between-repetition sd (noncentral t; alpha / m for a pair of '
        'interest, the strictest step of Holm over its m pairs; alpha for the others). '
        'Never planned at the observed difference, which in an inconclusive pair is '
        'mostly noise. An sd from a few repetitions is itself uncertain, so read it as '
        'an order of magnitude.',
    ),
    # summary
    'summary.typical_median_rtt': (
        'typical median RTT',
        "the geometric mean of the scenario's repetition medians (the median RTT of "
        "each repetition's answered probes), with the t interval over repetitions "
        '(df = R - 1, on the log scale): the {level} confidence interval.',
    ),
    'summary.mean_rtt': (
        'mean RTT',
        "the mean of the repetitions' mean RTTs, with its t interval over "
        'repetitions.',
    ),
    'summary.p99': (
        'p99',
        "the 99th percentile of all the scenario's answered probes (type 7): a "
        'per-probe description of its tail.',
    ),
    'summary.loss': (
        'loss',
        "the mean over repetitions of each repetition's loss, 100 · (sent - "
        'received) / sent (sender → counter when the campaign measured it, else '
        'ping).',
    ),
    'summary.share_baseline_p': (
        'share ≤ baseline {p}',
        "per repetition, the fraction of probes at or below the baseline's {p}; "
        'mean over repetitions with its t interval (Closeness section).',
    ),
    'summary.against_log': (
        'against {baseline}',
        "the pair's outcome (below) and the ratio of the scenario's typical median "
        "to the baseline's, with its {level} interval",
    ),
    'summary.against_us': (
        'against {baseline}',
        "the pair's outcome (below) and the difference of the typical medians in µs",
    ),
    # claims
    'claims.verdict': (
        'verdict',
        'supported: the test shows the claim; contradicted: it shows the opposite '
        '(a claimed equivalence found different; a claimed speed-up found '
        'equivalent within the margin, or slower; a claimed closeness reversed); '
        'not settled: neither.',
    ),
    'claims.p': (
        'p, p adjusted by',
        "for ≈ claims the pair's Holm-adjusted TOST p, for < claims its "
        'Holm-adjusted difference p (Holm over the pairs of interest, Pairwise '
        "verdicts). For the closeness claim, on the difference of the repetitions' "
        'shares (paired by block), two t tests whose p-values are Holm-adjusted over '
        "the two: the two-sided test's p when it decides (above: supported; below: "
        "contradicted), else the one-sided test's p of H0 'the difference is at least "
        "the study's 28 points' (rejected: contradicted, the difference is smaller). "
        "Its standard error is at least the shares' sampling error, sqrt(mean "
        'p~(1 - p~)/n / R) with p~ = (k + 1/2)/(n + 1) for k of n probes, so its '
        'interval (in the estimate) never collapses to a point and p is never 0.',
    ),
    'claims.power_now': (
        'power now',
        "the chance, with this campaign's repetitions and the observed "
        'between-repetition sd, that the test would decide the claim if the stated '
        'truth held: for ≈, that equivalence is shown when the true difference is '
        '0; for <, that a difference as large as the margin is found; for the '
        "closeness claim, that the study's own 28-point difference is found. At "
        'alpha / m for the pairwise claims (m pairs of interest), alpha for the '
        'closeness claim.',
    ),
    # repetitions
    'repetitions.median_mean_p90_p99': (
        'median, mean, p90, p99',
        "of the repetition's answered probes, pooled over its sending hosts, in µs "
        '(percentiles of type 7).',
    ),
    'repetitions.block': (
        'block',
        'the block the repetition ran in (empty for campaigns planned before '
        'blocks).',
    ),
    'repetitions.share_baseline_p': (
        'share ≤ baseline {p}',
        "the fraction of the repetition's probes at or below the baseline's {p} "
        '(Closeness section).',
    ),
    # pairs
    'pairs.design_blocks': (
        'design, blocks',
        'paired: by block, over the blocks both ran in (their number); unpaired: '
        'Welch; untestable: fewer than two repetitions on a side.',
    ),
    'pairs.typical_a_b': (
        'typical a, b',
        "each scenario's typical median: the geometric mean of its repetition "
        'medians (µs).',
    ),
    'pairs.effect_log': (
        'ratio a/b',
        'the mean over blocks of the difference of the log repetition medians, '
        'exponentiated (unpaired: the difference of the mean logs), with its '
        '{level} t interval',
    ),
    'pairs.effect_us': (
        'a - b',
        'the mean difference of the repetition medians in µs, with its t interval',
    ),
    'pairs.between_rep_sd': (
        'between-rep sd',
        'the sd of the per-block differences (paired), or the root mean square of '
        "the two scenarios' sds (unpaired), on the comparison's scale.",
    ),
    'pairs.difference_p': (
        'difference p',
        'two-sided t test of no difference: t = estimate / se, df = blocks - 1 '
        '(paired) or Welch-Satterthwaite (unpaired).',
    ),
    'pairs.tost_p': (
        'TOST p',
        "the larger of the two one-sided t tests' p-values, H0: the difference is "
        'at least the margin, in either direction.',
    ),
    'pairs.holm': (
        'Holm',
        "Holm's step-down correction within each family (difference, TOST) over the "
        'testable pairs of interest (column family): sorted p-values p(1) ≤ … ≤ p(m) '
        'become max over j ≤ i of (m - j + 1)·p(j), capped at 1; it bounds the chance '
        'of any false claim among them by alpha = {alpha:g}. Pairs with the baseline '
        '(a reference, different by design) and with an A/A control are not in the '
        'family: each is judged on its own p at alpha (their "Holm" p is the raw p), '
        'so that a control is held to the plain test.',
    ),
    'pairs.power_now': (
        'power now',
        'with the repetitions at hand and the observed between-repetition sd, at '
        'alpha / m = {alpha_planning:.3g} for the pairs of interest (alpha for the '
        'pairs with the baseline or a control): the chance the TOST shows equivalence '
        'when the true difference is 0, and the chance the t test finds a true '
        'difference as large as the margin.',
    ),
    'pairs.equivalence_group': (
        'equivalence group',
        'scenarios linked by a chain of pairs found equivalent (connected '
        "components of the 'equivalent' graph); 'every pair equivalent: no' flags a "
        'chain (a ≈ b, b ≈ c, but a ≉ c).',
    ),
    # loss
    'loss.loss_of_a_repetition': (
        'loss of a repetition',
        "100 · (sent - received) / sent, pooled over the repetition's hosts (or "
        'flows).',
    ),
    'loss.flagged_reps': (
        'flagged reps',
        'repetitions whose counter saw more frames of the flow than the sender sent '
        '(foreign or duplicated frames matching the filter): their loss cannot be '
        'measured, so they are left out of reps, of the loss statistics and of the '
        'frame totals; the notes on the data name them.',
    ),
    'loss.loss_mean': (
        'loss mean',
        "arithmetic mean of the repetitions' losses (each repetition weighs the "
        'same).',
    ),
    'loss.backend': (
        'backend',
        'the sending and counting tools: pf_ring = pfsend -> pfcount; '
        "trafgen_tcpdump = netsniff-ng's trafgen -> tcpdump; trafgen_pfcount and "
        'pfsend_tcpdump where only one end has pf_ring.ko loaded. Every counter '
        "counts only the generated flow (BPF 'udp and dst port 3000'). pfsend paces "
        'its frames evenly; trafgen (-b <rate>pps, netsniff-ng 0.6.8) sends each '
        "second's frames as one burst, so on a trafgen backend this loss is the "
        'loss of one-second bursts of that many frames, not of an even rate: the '
        'throughput search (below) sends evenly spaced frames.',
    ),
    'loss.min_max': (
        'min, max',
        'smallest and largest repetition loss.',
    ),
    'loss.std': (
        'std',
        'sample standard deviation of the repetition losses (n - 1 in the '
        'denominator); empty with a single repetition.',
    ),
    # rtt
    'rtt.n': (
        'n',
        'answered probes, pooled over all repetitions and hosts; unanswered probes '
        'count as loss, not as RTT.',
    ),
    'rtt.rtt_mean': (
        'RTT mean',
        'arithmetic mean of the n round-trip times, in microseconds.',
    ),
    'rtt.rtt_std': (
        'RTT std',
        'sample standard deviation of the n round-trip times (n - 1 in the '
        'denominator), in microseconds: the spread of single probes, not the '
        'uncertainty of the mean (see the confidence intervals below).',
    ),
    # distribution
    'distribution.px': (
        'pX',
        "the X-th percentile of the answered probes' RTT, by linear interpolation "
        "between order statistics (Hyndman-Fan type 7, numpy's default): with the n "
        'values sorted, position h = (n - 1)·X/100, value x[⌊h⌋] + (h - '
        '⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).',
    ),
    'distribution.median_typical_repetition_median': (
        'median (typical repetition median)',
        "the geometric mean of the repetitions' median RTTs: exp of the mean of "
        'their logs. Its between-repetition sd is the sd of those logs (about the '
        'coefficient of variation from one repetition to the next).',
    ),
    'distribution.mean': (
        'mean',
        "the mean of the repetitions' mean RTTs (each repetition weighs the same); "
        'between-repetition sd in µs.',
    ),
    'distribution.t_ci': (
        't CI',
        'mean ± t(df = R - 1) · sd / √R over the R repetitions (on the log scale '
        'for the median, then back-transformed): the {level} interval that holds '
        "when repetitions vary at random around the scenario's value. It is wide "
        'with few repetitions (t = 4.30 for R = 3), because that is what three '
        'repetitions can tell.',
    ),
    'distribution.two_level_bootstrap_ci': (
        'two-level bootstrap CI',
        'B = {resamples} replicates, seed {seed} (a stream per scenario name); each '
        'draws R repetitions with replacement and, within each drawn repetition, a '
        'resample of its probes with replacement (median: exactly, from order '
        'statistics; mean: as the per-probe bootstrap), and recomputes the '
        'statistic. The interval runs from the {boot_low_pct:g}th to the '
        '{boot_high_pct:g}th percentile of the replicates. With few repetitions it '
        'is too narrow: it only sees the R repetitions at hand (R = 3 gives 10 '
        'distinct sets) and does not widen as t does. The verdicts use the t '
        'interval.',
    ),
    # closeness
    'closeness.share_baseline_p': (
        'share ≤ baseline {p}',
        'for each repetition, the fraction of its answered probes whose RTT is at '
        "or below the baseline's {p} ({threshold_us} µs, over all the baseline's "
        "probes); the scenario's value is the mean over its repetitions, with a t "
        'interval over repetitions (df = R - 1, clipped to 0-100 %; its standard error '
        "at least the shares' sampling error, so it never collapses to a point). The "
        'baseline '
        'scores about {percentile:g} % by construction; a scenario as fast as the '
        'baseline scores the same, a slower one less. This is the reading of the '
        "seed study's 'close to the baseline X % of the time'.",
    ),
    'closeness.lowest_rep_highest_rep': (
        'lowest rep, highest rep',
        "the smallest and largest repetition's share.",
    ),
    'closeness.one_minus_d': (
        '1 - D',
        '1 minus the Kolmogorov-Smirnov distance max over x of |F_s(x) - F_b(x)| '
        "between the scenario's and the baseline's empirical CDFs over all probes "
        '(Figure 2): a description of the shapes (1: identical, 0: no overlap), not '
        'a test.',
    ),
    # costs
    'costs.metric': (
        'metric',
        "a counter's change over the counter window (the load at rate) divided by "
        'the frames sent at rate, as the collector derived it: cpu_us_per_packet: '
        'busy CPU time of the host, all cores (/proc/stat, non-idle non-iowait '
        "ticks / CLK_TCK), in µs per frame; interrupts_per_packet: the host's "
        'interrupts per frame; qemu_cpu_us_per_packet: user+system CPU time of all '
        'QEMU threads in µs per frame; exits_per_packet: KVM exits of the VM per '
        'frame. Host-wide counters include everything the host ran in the window: '
        'on the embedded lab the namespace hosts and the controller share one '
        "kernel, so Ansible's own work is in them.",
    ),
    'costs.host': (
        'host',
        "the host whose counters gave the value (qemu: the QEMU process's threads; "
        "kvm: the VM's KVM exit counter).",
    ),
    'costs.mean_min_max_std': (
        'mean, min, max, std',
        'over repetitions; std is the sample standard deviation (n - 1).',
    ),
    # search
    'search.ndr_no_drop_rate': (
        'NDR (no-drop rate)',
        'the highest offered rate at which no frame of the flow was lost, below the '
        'lowest offered rate that lost any, the two within the relative granularity '
        '({granularity}: upper / lower - 1), confirmed by the validation trial(s) '
        'at that rate (a rate that passed once and lost in validation counts as '
        'lost).',
    ),
    'search.pdr_partial_drop_rate': (
        'PDR (partial-drop rate)',
        'the same with a loss ratio (lost / sent) of at most {pdr_pct} (the PDR '
        'ratio) instead of none.',
    ),
    'search.valid_trial': (
        'valid trial',
        'a trial whose generator sent the offered rate within {tolerance} (achieved '
        "rate = frames sent / the sender's own time: it fell neither short of the "
        'offered rate nor overshot it by more than the tolerance) and whose counter '
        'saw no more frames than were sent. An invalid trial never counts as loss: '
        'it is run again, or, when the generator fell short while sending flat out, '
        'it lowers the rate the search may offer to what the generator achieved.',
    ),
    'search.mean': (
        'mean',
        "the arithmetic mean of the repetitions' rates (each repetition is one "
        'search and weighs the same; trials are never pooled across repetitions); n '
        'counts the repetitions with a rate. Shown only when every search found its '
        'rate. When any is censored (a lower bound, below the minimum searched, or no '
        'rate), the cell shows the median over every search instead, bounded from its '
        'censored values: each search gives an interval (found: its rate; a lower '
        'bound x: [x, ∞); below the minimum: [0, min); no rate: [0, ∞)), and the median '
        'lies between the median of the lower ends and that of the upper ends: "median '
        'x" when they agree, "median ≥ x" or "median < x" when one is unbounded. No t '
        'interval is given then (—).',
    ),
    'search.level_ci': (
        '{level} CI',
        "mean ± t(df = n - 1) · sd / √n over the n repetitions' rates (Student t; "
        'the repetition is the unit of replication), the lower end clipped at 0; — '
        'with n < 2.',
    ),
    'search.kframes_s_mbit_s': (
        'kframes/s, Mbit/s',
        "offered frames per second / 1000; and the frames' bit rate, rate · frame "
        'bytes · 8 / 10⁶, counting the frame as generated (without the 4-byte CRC, '
        'the 8-byte preamble and the 12-byte inter-frame gap, which add (4 + 8 + '
        '12) · 8 bits per frame on the wire).',
    ),
    'search.at_least': (
        '≥',
        'a lower bound: the rate of at least one repetition is one, because nothing '
        'lost up to the maximum searched (at the maximum searched), the generator '
        'could not send faster (generator-limited), or the trials ran out before '
        'the bounds were resolved (out of trials); the true rate may be higher. '
        'A row with such a search shows the censoring-aware median (mean, above).',
    ),
    'search.below_min_left_out': (
        '< min, left out',
        'a repetition whose search lost even at the minimum rate searched has no '
        'NDR (PDR): it is shown as < min (in kframes/s) and left out of n, the mean '
        'and the interval, counted under left out; so is a repetition whose trials '
        'ran out before any rate passed.',
    ),
    # load
    'load.latency_under_load': (
        'latency under load',
        'ICMP echo probes (ping, every {ping_interval} s) sent while the generated '
        "flow runs at the stated fractions of the repetition's PDR "
        '({load_fractions}), for {load_s} s each, the load started before the '
        "probes and stopped after them; idle: the seed's ping of the same "
        'repetition (data/rtt.parquet), without generated load. When the PDR is a '
        'lower bound (≥ in Table 3), so are the loads.',
    ),
    'load.invalid_load_points_left_out': (
        'invalid load points left out',
        'load points whose load was an invalid trial (the generator missed the '
        'offered rate by more than the tolerance, or the counter saw more frames '
        'than were sent): their probes did not see the stated load, so they are '
        'left out ({excluded} in this campaign).',
    ),
    'load.rtt_p50_p99': (
        'RTT p50, p99',
        'per repetition, the 50th and 99th percentile (type 7) of its answered '
        'probes at that load; the table shows the mean over the n repetitions and '
        'its {level} t interval (df = n - 1, the lower end clipped at 0); — with n '
        '< 2.',
    ),
    'load.offered': (
        'offered',
        "the mean over the repetitions of the load point's offered rate.",
    ),
    'load.probe_loss': (
        'probe loss',
        'per repetition, 100 · unanswered / sent probes; the mean over the '
        'repetitions.',
    ),
    # search
    'search.max_achieved': (
        'max achieved',
        "the highest achieved rate (frames sent / the sender's own time) over all "
        "the host's trials in this campaign, valid or not, load points included: "
        'what its generator was seen to do with these frames.',
    ),
    'search.fell_short_overshot': (
        'fell short, overshot',
        'invalid trials whose generator sent more than {tolerance} below (fell '
        'short) or above (overshot) the offered rate.',
    ),
    'search.other_invalid': (
        'other invalid',
        'invalid for another reason: the counter saw more frames than were sent, a '
        "tool's closing lines were missing, or a tool failed.",
    ),
    'search.limit_learned': (
        'limit learned',
        'the highest rate a search saw the generator reach when it fell short while '
        'sending flat out; the search then offers no more.',
    ),
    'search.searches_limited': (
        'searches limited',
        'searches whose NDR or PDR is generator-limited: the generator, not the '
        'path measured, ended them.',
    ),
    # comparison
    'comparison.median_then_now': (
        'median then, now',
        "each campaign's typical median: the geometric mean of the scenario's "
        'repetition medians (µs).',
    ),
    'comparison.change': (
        'change (%)',
        '100 · (exp(d) - 1), d = mean log repetition median now - then; with its '
        '{level} t interval, whose standard error includes the variation between '
        'nights (below).',
    ),
    'comparison.between_night_sd': (
        'between-night sd',
        "repetitions of one campaign share that night's conditions, so a campaign is "
        'one draw of the night: the variance of a change is 2·sb² + s_now²/R_now + '
        's_then²/R_then, sb the sd between nights of the scenario\'s night value (log '
        'median; loss in points), s each campaign\'s sd between repetitions. sb comes '
        'from --history (a nightly catalog or campaign folders: var(night values) - '
        'mean(s²/R), at least 0, df = nights - 1, pooled with the prior by df) or, '
        'without one, from the prior ({prior_median:g} log, {prior_loss:g} points, df '
        '{prior_df:g}: three stored campaigns of one unchanged lab). df: '
        'Welch-Satterthwaite over the three terms.',
    ),
    'comparison.median_p': (
        'p',
        'two-sided t test of no change (t = d / se, the se and df above), '
        'Holm-corrected over the scenarios compared with each older campaign and both '
        'metrics (median, loss): one family per older campaign.',
    ),
    'comparison.tost_p': (
        'TOST p',
        'two one-sided t tests that the change lies within the margin (median: ±'
        '{regression_threshold_pct:g} % of the typical median, on the log scale; loss: '
        '±{loss_threshold_pp:g} points), Holm-corrected likewise.',
    ),
    'comparison.loss': (
        'loss',
        "mean over repetitions of each repetition's loss, 100 · lost / sent (sender "
        '→ counter when data/rate.parquet exists, else ping; a flagged repetition, '
        'with more frames counted than sent, is left out); compared in points as '
        'the median is, between nights included.',
    ),
    'comparison.verdict': (
        'verdict',
        'per metric: regressed, worse by more than the margin with Holm p < '
        '{alpha:g}; improved, the same, better; unchanged, the TOST shows the change '
        'within the margin (Holm p < {alpha:g}); inconclusive, neither: a wide '
        'interval is not evidence of no change. A scenario regressed if a metric did, '
        'else inconclusive if one is, else improved if one is, else unchanged; not '
        'comparable: data in only one campaign. The comparison is regressed if any '
        'scenario is (exit status 3), else inconclusive if any is (exit status 4), '
        'else unchanged (exit status 0).',
    ),
    # probe agreement (the independent probe)
    'probes.interleaving': (
        'fping beside ping',
        'fping probed the same target from the same host as ping, in the same '
        'repetition and the same capture call: both were started together, each '
        "with the campaign's probe count and spacing ({interval}), fping {offset} "
        'after ping, so that their probes alternate on the path. The alternation is '
        "approximate: each tool's own start-up and timer drift move the phase (the "
        "real starts are in each run's ping.txt.meta.json and fping.txt.meta.json).",
    ),
    'probes.p50_of_a_repetition': (
        'p50 of a repetition',
        "the median round-trip time of one tool's answered probes in one "
        'repetition, in µs; unanswered probes are left out.',
    ),
    'probes.ping_fping_p50': (
        'ping p50, fping p50',
        'the median over the repetitions of the p50 of a repetition, in µs: the '
        'repetition is the unit. Where fping has data both are taken over the same '
        'repetitions, those where both tools had answered probes (reps counts them); '
        "elsewhere ping's is over all its repetitions (counted instead).",
    ),
    'probes.ratio': (
        'ratio',
        "fping p50 / ping p50 (dimensionless); 1 is perfect agreement.",
    ),
    'probes.disagree': (
        'disagree',
        '|ratio - 1| > {threshold_pct:g} %: the two probes do not see the same RTT, '
        "so the scenario's RTT is not confirmed by an independent tool; agree "
        'otherwise. fping not collected: the campaign has no fping data (collected '
        'before fping ran beside ping, or with the fping collector off), so ping '
        'has no independent check.',
    ),
    'probes.sockperf': (
        'sockperf p50',
        "where the campaign enabled it (kvmnetlab_sockperf): sockperf ping-pong's "
        '50th percentile, UDP request/response between the same hosts after ping '
        'and fping, at one message per probe interval, sockperf dropping its first '
        '400 ms and last 50 ms; the median over repetitions, in µs, of the statistic '
        'its output reported: RTT (run with --full-rtt) or RTT/2 (sockperf\'s '
        'default one-way latency). Another protocol: shown, not compared.',
    ),
    # competing guests and containers
    'competing.kind_n': (
        'kind, N',
        'guests: a scenario with virtualization kvm and guests: N, N guests at once; '
        'containers: virtualization container, N containers at once (guests: N; absent '
        'means 1); bare metal: the reference ({reference}). The scenarios of one kind with '
        'the same requested io_path, capture, ELVIS mode and knobs form a series, drawn '
        'as one line against N; a guest series without N > 1 is left out.',
    ),
    'competing.flow': (
        'flow',
        "one receiver's share of a repetition: the sender sends one fixed-rate flow to "
        'each of the N guests or containers at once, inside one counter window, and '
        'probes each with its own ping, all pings at the same time, after the load. The '
        'flows of one repetition share its circumstances, as its probes do: they are not '
        'independent, so every statistic of a scenario first reduces each repetition to '
        'one number.',
    ),
    'competing.loss': (
        'loss',
        "of a flow: 100 · lost / sent of that flow's frames (%); of a repetition: "
        '100 · Σ lost / Σ sent over its flows (%). The throughput search (NDR/PDR) is not '
        'run with N > 1 flows: the loss at the fixed offered rate ({offered}) is the loss '
        'measure. A flow whose counter saw more frames than were sent is flagged: its '
        "loss and throughput are empty, and so are its repetition's.",
    ),
    'competing.throughput': (
        'throughput',
        "of a flow: received frames / the flow's duration, the duration being sent / "
        'offered rate (frames/s); of a repetition: the sum over its flows (frames/s).',
    ),
    'competing.rtt': (
        'RTT p50, p99',
        "of a flow: the 50th and 99th percentiles (type 7) of its answered ping probes "
        'in one repetition (µs); of a repetition: the median over its flows of each (µs).',
    ),
    'competing.jain': (
        "Jain's index",
        "J = (Σx)² / (N · Σx²) over the throughputs x of a repetition's N flows "
        '(dimensionless): 1 when every flow gets the same, 1/N when one flow gets '
        'everything. Not defined for one flow (empty), nor for a repetition with a '
        'flagged flow (left out and counted).',
    ),
    'competing.interval': (
        'mean and interval',
        'over the repetitions, each weighing the same: the mean of the per-repetition '
        'numbers and its {level} Student t interval, mean ± t(df = R - 1) · sd / √R '
        '(empty with R < 2). The lower ends of RTT, loss, throughput and CPU are clipped '
        "at 0, Jain's interval to [1/N, 1].",
    ),
    'competing.cpu': (
        'CPU per frame',
        "µs of CPU per frame sent over all the repetition's flows, from "
        "data/costs.parquet. host CPU: cpu_us_per_packet of the scenario's hypervisor "
        '(resolved.hosts.hypervisor; for bare metal, the only host that reported it); '
        'QEMU threads: qemu_cpu_us_per_packet, utime + stime of all QEMU threads of the '
        "run's guests; containers' cgroups: container_cpu_us_per_packet, the cpuacct "
        "usage of all the run's containers.",
    ),
    'competing.acceleration': (
        'acceleration',
        'resolved.virtualization in the manifest, what ran: kvm, hardware-assisted '
        "virtualization; tcg, QEMU's software emulation (every guest instruction "
        "translated on the host's CPU), not KVM; container, no guest kernel: the "
        "container's processes run in the host's kernel.",
    ),
}


def _night_value_term() -> tuple[str, str]:
    """From the code: which metrics :func:`analysis.history.summarise` summarises on the log
    scale (:func:`analysis.replication.night_value`)."""
    logged = ", ".join(history.RTT_PERCENTILES)
    return ('Night value',
            'For each repetition of the scenario the night computes the metric (e.g. '
            'rtt_p50_us: the median RTT of that repetition, in µs); the night value is one '
            f'summary of those per-repetition values, in the metric\'s unit: for {logged} '
            'their geometric mean (the same function gives the report\'s typical median), '
            'for every other metric (losses, rates, costs, which may be 0) their arithmetic '
            'mean.')


def _direction_term() -> tuple[str, str]:
    """From the code: :data:`analysis.history.HIGHER_IS_BETTER`."""
    higher = " and ".join(sorted(history.HIGHER_IS_BETTER))
    return ('Regression, progression',
            'A change point that makes the metric worse (regression) or better '
            f'(progression). Higher is better for {higher} (throughput, packets/s); lower '
            'is better for every other metric (RTT, loss, CPU per packet).')


def _change_point_term() -> tuple[str, str]:
    """The change-point test in words: analysis.changepoints.DEFINITION (a (term, text)
    template with the fields {p_value} and {min_segment}) when the detector exports one.

    THE ONE PLACE to describe the detector otherwise: the fallback below describes
    analysis/changepoints.py as it stands (E-divisive split, Student's pooled t test at
    a first-pass level, the excursion test, the merge step), its numbers from the
    module's constants; replace it by changepoints.DEFINITION when the detector changes.
    """
    exported = getattr(changepoints, "DEFINITION", None)
    if exported is not None:
        return exported
    level = f"{100 * changepoints.CONFIDENCE:g} %"
    return ('Change point',
            'A night where the level of a metric changes, found within each segment by '
            'E-divisive means (Matteson and James 2014): the nights are split recursively at '
            'the point that maximises the energy distance between the two sides, each side '
            'holding at least {min_segment} nights (minimum segment length). A split is kept '
            "when Student's two-sample t test (pooled variance) of the values either side "
            'gives p below the first-pass level (10 times {p_value:g} when that is below '
            '0.05, twice it below 0.5), or, failing that, when the nights between the split '
            'and the end of the best candidate differ from both sides at p < {p_value:g} / P '
            'each (the excursion test, P the candidate pairs: a Bonferroni level). Change '
            'points are then tested again between the final segments beside them, and dropped'
            ' while the weakest has p >= {p_value:g}. Shown with the first night after the '
            'change, the means before and after (in the unit), the change (after - before) as'
            f' % of before, the {level} Welch confidence interval of the change (also % of '
            "before) and the t test's p-value.")


# The trend dashboard's statistics (analysis.dashboard), in the order the page lists them.
# Fields: short_nights, long_nights (recorded nights), p_value, min_segment (nights): the
# dashboard's windows and the change-point detector's settings.
DASHBOARD_TERMS: dict[str, tuple[str, str]] = {
    'dashboard.night': (
        'Night',
        'One nightly campaign, named by its start time (UTC). Nights are counted as '
        'recorded nights, whatever their outcome, in order: "the last N nights" are the '
        'newest N recorded nights. On the charts\' time axis every recorded night takes one '
        'step, whatever the time between them.',
    ),
    'dashboard.outcome': (
        'Outcome',
        'done: the night\'s campaign ran and produced values. failed, skipped, '
        'refused: it produced none (it failed, was not started, or was refused); the reason '
        'the nightly run recorded is listed under "Nights that did not run" and shown on '
        'the charts (hover a marker at the bottom of a panel).',
    ),
    'dashboard.night_value': _night_value_term(),
    'dashboard.sd': (
        'sd',
        'The sample standard deviation (n - 1) of the per-repetition values of the '
        'night, in the metric\'s unit; none with one repetition. Error bars are ± 1 sd.',
    ),
    'dashboard.segment': (
        'Segment',
        'A run of done nights measured with the same parameters and the same lab. '
        'A new segment starts when either changes; its reason is shown at its boundary. '
        'Values are never compared across segments: no trend, change point or short-term '
        'change spans a boundary.',
    ),
    'dashboard.change_point': _change_point_term(),
    'dashboard.direction': _direction_term(),
    'dashboard.trend': (
        'Trend',
        'The mean of the night values since the last change point (or since the '
        'segment started, when it has none): the level the metric runs at now, in its unit. '
        'The trend line on the charts is drawn across each run of nights between change '
        'points (and segment boundaries) at that run\'s mean.',
    ),
    'dashboard.last_vs_trend': (
        'Last vs trend',
        '100 · (newest value - trend) / |trend|, in %: how far the newest '
        'night lies from the level.',
    ),
    'dashboard.short_term': (
        'Short-term change ({short_nights} nights)',
        '100 · (trend now - trend then) / '
        '|trend then|, in %, where "then" is the newest night with a value at or before '
        'the night {short_nights} recorded nights before the newest. The trend then is the '
        'mean of that night\'s run, so the change is 0 unless a change point lies between '
        'the two. Empty, with a note, when that night is in an earlier segment.',
    ),
    'dashboard.long_term': (
        'Long-term change ({long_nights} nights)',
        '100 · (trend now - best trend) / '
        '|best trend|, in %, where the best trend is the best trend of the nights of the '
        'last {long_nights} recorded nights in the current segment: the highest when higher '
        'is better, the lowest otherwise. 0 when the metric runs at its best level now.',
    ),
    'dashboard.changes_counted': (
        'Regressions, progressions (#)',
        'The number of change points whose first night after '
        'lies in the last {long_nights} recorded nights (every segment).',
    ),
    'dashboard.classification': (
        'Classification',
        'The direction of the newest change point of the current segment '
        'in the last {long_nights} nights (regression, progression); normal when there is '
        'none. Regressions are highlighted in red, progressions in green.',
    ),
}
DASHBOARD = tuple(DASHBOARD_TERMS)

# The three outcomes of a comparison and what they rest on, shown with every verdict.
OUTCOMES = (
    "outcome.the_unit",
    "outcome.paired_by_block",
    "outcome.different",
    "outcome.equivalent",
    "outcome.inconclusive",
)


def wording(options: Any, seed: int, baseline: str) -> dict[str, Any]:
    """The template fields every definition may use, from the analysis options."""
    confidence = options.confidence
    return {
        "level": f"{100 * confidence:g} %",
        "alpha": 1.0 - confidence,
        "percentile": options.percentile,
        "p": f"p{options.percentile:g}",
        "margin": options.margin.describe(),
        "scale": SCALE_WORDS["log" if options.margin.scale == "log" else "us"],
        "resamples": options.resamples,
        "seed": seed,
        "boot_low_pct": 50 * (1 - confidence),
        "boot_high_pct": 100 - 50 * (1 - confidence),
        "baseline": baseline or "the baseline",
        "power_target": POWER_TARGET,
        "regression_threshold_pct": options.regression_threshold_pct,
        "loss_threshold_pp": options.loss_threshold_pp,
        "prior_median": PRIOR["median"].between_sd,
        "prior_loss": PRIOR["loss"].between_sd,
        "prior_df": PRIOR["median"].between_df,
    }


def define(keys: Iterable[str], values: dict[str, Any],
           terms: dict[str, tuple[str, str]] = TERMS) -> Definitions:
    """The definitions of ``keys`` (in ``terms``: the report's by default), in that order,
    their fields filled from ``values``."""
    return Definitions([
        (terms[key][0].format(**values), terms[key][1].format(**values)) for key in keys
    ])
