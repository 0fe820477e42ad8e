"""Calibration of --compare: the previous chain (repetitions as independent draws of the lab)
beside the new one (the night as the unit), on unchanged labs and planted changes.

    python bench/calibration_compare.py                  # 200 datasets per cell, ~2 min
    python bench/calibration_compare.py --datasets 2000 --repetitions 3 5 10

Functions for bench/bench_calibration.py (:func:`measure`, :func:`print_table`), and a
command line of its own. Two kinds of datasets, each a pair of campaigns (newer, older)
of one configuration (``guest``: every guest scenario of the embedded lab resolves to one
configuration there):

- *resampled*: the three campaigns of one unchanged lab stored in
  tests/analysis_data/campaigns/ are three nights; a dataset takes two different nights
  and R whole repetitions of each (analysis.calibration.resampled_pairs). Nothing
  changed but the night: every "regressed" is false. With three nights the
  between-night variation is the one those three nights happen to show.
- *simulated*: nights drawn from the two-level model with the variance components
  measured on the same campaigns (:func:`stored_model`); the newer campaign's RTTs
  multiplied by 1 + shift (0, +10 %, +20 %). The new chain is run without a history
  (the prior) and with a simulated history of 12 nights of the same lab.

Chains: ``old`` is :func:`previous_compare_campaigns`, a frozen copy of the comparison
before the night became the unit (Welch's t test on the two campaigns' repetitions, Holm
over scenarios, regressed when significant and above the threshold, else unchanged);
``new`` is analysis.replication.compare_campaigns as the CLI calls it. Rates are printed
with their binomial standard errors.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis import between_nights, replication  # noqa: E402
from analysis import calibration as cal  # noqa: E402
from analysis.stats import holm  # noqa: E402

DATA = REPO / "tests" / "analysis_data" / "campaigns"
STORED = ("calib10", "quickstart1", "small2")
HISTORY_NIGHTS = 12


# --------------------------------------------------------------------------- the previous chain


def previous_compare_campaigns(new_summary, old_summary, new_loss, old_loss, *,
                               threshold_pct=10.0, loss_threshold_pp=1.0, confidence=0.95):
    """THE PREVIOUS METHOD, frozen for comparison (analysis.replication.compare_campaigns as
    it was before the night became the unit): Welch's t test on the two campaigns'
    repetitions (log medians; losses), Holm over scenarios; regressed when significant and
    the change above the threshold, improved symmetrically, else unchanged. Returns
    scenario, median_change_pct, verdict."""
    alpha = 1.0 - confidence

    def values(summary, column, log):
        out = {}
        for name, g in summary.groupby("scenario", sort=False, observed=True):
            y = g[column].to_numpy(dtype=float)
            y = y[np.isfinite(y)]
            out[str(name)] = np.log(np.maximum(y, replication.LOG_FLOOR_US)) if log else y
        return out

    def welch(a, b):
        if a.size < 2 or b.size < 2:
            return float(a.mean() - b.mean()) if a.size and b.size else math.nan, math.nan
        d = float(a.mean() - b.mean())
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        se = math.sqrt(va + vb)
        if se == 0:
            return d, (1.0 if d == 0 else 0.0)
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
        return d, float(2 * sps.t.sf(abs(d) / se, df))

    nv, ov = values(new_summary, "median_us", True), values(old_summary, "median_us", True)
    nl, ol = values(new_loss, "loss_pct", False), values(old_loss, "loss_pct", False)
    rows = []
    for name in dict.fromkeys([*nv, *ov]):
        d, p = welch(nv[name], ov[name]) if name in nv and name in ov else (math.nan, math.nan)
        dl, pl = welch(nl[name], ol[name]) if name in nl and name in ol else (math.nan, math.nan)
        rows.append({"scenario": name, "median_change_pct": 100 * math.expm1(d),
                     "median_p": p, "loss_change_pp": dl, "loss_p": pl})
    out = pd.DataFrame(rows)
    sig_m = holm(out["median_p"].to_numpy(dtype=float)) < alpha
    sig_l = holm(out["loss_p"].to_numpy(dtype=float)) < alpha
    worse = (sig_m & (out["median_change_pct"] > threshold_pct)) | (
        sig_l & (out["loss_change_pp"] > loss_threshold_pp))
    better = (sig_m & (out["median_change_pct"] < -threshold_pct)) | (
        sig_l & (out["loss_change_pp"] < -loss_threshold_pp))
    out["verdict"] = np.select([out["median_p"].isna() & out["loss_p"].isna(), worse, better],
                               ["not comparable", "regressed", "improved"],
                               default="unchanged")
    return out


def old_chain(new, old, **_):
    return previous_compare_campaigns(new[0], old[0], new[1], old[1])


# --------------------------------------------------------------------------- data


def stored_nights(folder: Path = DATA) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(night, repetition summary, loss per repetition) of each stored campaign."""
    return [cal.night_inputs(folder / name) for name in STORED]


def guest_pool(scenario: str) -> str:
    """Every guest scenario of the embedded lab runs one configuration; the baseline is
    left out (its 10 µs medians sit at ping's resolution)."""
    return "" if scenario == "baseline" else "guest"


def stored_model(nights) -> cal.NightModel:
    """The two-level model's components, measured on the stored nights' guest repetitions
    (analysis.between_nights.components of the pooled guest configuration)."""
    frames, levels, losses = [], [], []
    for night, values in cal.night_pools(nights, guest_pool).items():
        reps, loss = cal.frames_of(values)
        frames.append(between_nights.campaign_nights(night, reps, loss))
        levels.append(np.log([v[0] for v in values]).mean())
        losses.append(np.mean([v[1] for v in values]))
    comp = between_nights.components(pd.concat(frames)).set_index("metric")
    return cal.NightModel(
        log_median=float(np.mean(levels)), between_sd=float(comp.loc["median", "between_sd"]),
        within_sd=float(comp.loc["median", "within_sd"]), loss_pct=float(np.mean(losses)),
        loss_between_sd=float(comp.loc["loss", "between_sd"]),
        loss_within_sd=float(comp.loc["loss", "within_sd"]))


# --------------------------------------------------------------------------- measurement


def _verdict(frame: pd.DataFrame) -> str:
    return str(frame.set_index("scenario").loc["guest", "verdict"])


def resampled_rates(nights, repetitions: int, datasets: int, seed: int) -> dict[str, dict]:
    """Verdict rates of each chain on resampled unchanged pairs (the prior for the new chain
    without a history; with the three stored nights as its history)."""
    pools = cal.night_pools(nights, guest_pool)
    history = pd.concat([between_nights.campaign_nights(n, *cal.frames_of(v))
                         for n, v in pools.items()], ignore_index=True)
    got = {"old": [], "new, prior": [], "new, history of the 3 nights": []}
    for new, old in cal.resampled_pairs(pools, repetitions, datasets, seed):
        got["old"].append(_verdict(old_chain(new, old)))
        got["new, prior"].append(_verdict(cal.new_chain(new, old)))
        got["new, history of the 3 nights"].append(
            _verdict(cal.new_chain(new, old, history=history)))
    return {k: cal.verdict_rates(v) for k, v in got.items()}


def simulated_rates(model: cal.NightModel, repetitions: int, shift: float, datasets: int,
                    seed: int) -> dict[str, dict]:
    """Verdict rates of each chain on simulated pairs, the newer one's RTTs x (1 + shift); the
    new chain with the prior, and with a fresh simulated history of HISTORY_NIGHTS nights."""
    rng = np.random.default_rng([seed, repetitions, round(1000 * shift)])
    got = {"old": [], "new, prior": [], f"new, history of {HISTORY_NIGHTS} nights": []}
    for _ in range(datasets):
        new = cal.frames_of(cal.simulate_campaign(model, repetitions, rng, shift))
        old = cal.frames_of(cal.simulate_campaign(model, repetitions, rng))
        history = cal.simulated_history(model, HISTORY_NIGHTS, repetitions, rng)
        got["old"].append(_verdict(old_chain(new, old)))
        got["new, prior"].append(_verdict(cal.new_chain(new, old)))
        got[f"new, history of {HISTORY_NIGHTS} nights"].append(
            _verdict(cal.new_chain(new, old, history=history)))
    return {k: cal.verdict_rates(v) for k, v in got.items()}


MEASURE_COLUMNS = ["data", "chain", "repetitions", "shift", "datasets", "regressed",
                   "unchanged", "inconclusive", "improved"]


def measure(*, repetitions=(5, 10), shifts=(0.0, 0.10, 0.20), datasets: int = 400,
            seed: int = 2026, folder: Path = DATA) -> pd.DataFrame:
    """Every rate, one row per (data, chain, R, shift): the table :func:`print_table` shows."""
    nights = stored_nights(folder)
    model = stored_model(nights)
    rows = []
    for r in repetitions:
        for chain, rates in resampled_rates(nights, r, datasets, seed).items():
            rows.append({"data": "resampled", "chain": chain, "repetitions": r, "shift": 0.0,
                         "datasets": datasets, **rates})
        for shift in shifts:
            for chain, rates in simulated_rates(model, r, shift, datasets, seed).items():
                rows.append({"data": "simulated", "chain": chain, "repetitions": r,
                             "shift": shift, "datasets": datasets, **rates})
    return pd.DataFrame(rows).reindex(columns=MEASURE_COLUMNS)


def _rate(p: float, n: int) -> str:
    return f"{p:.3f} ± {cal.binomial_se(p, n):.3f}"


def print_table(frame: pd.DataFrame, model: cal.NightModel | None = None) -> None:
    """The measured rates, old and new side by side, with binomial standard errors."""
    if model is not None:
        print(f"model from the stored nights (guest repetitions): log median sd between nights "
              f"{model.between_sd:.3f}, within {model.within_sd:.3f}; loss sd between nights "
              f"{model.loss_between_sd:.2f} points, within {model.loss_within_sd:.2f}")
    print("\n--compare on unchanged labs: rate of false 'regressed' (target <= 0.05)")
    zero = frame.loc[frame["shift"] == 0.0]
    for (data, r), g in zero.groupby(["data", "repetitions"], sort=False):
        print(f"  {data}, R = {r}:")
        for row in g.itertuples():
            print(f"    {row.chain:<32} regressed {_rate(row.regressed, row.datasets)}   "
                  f"unchanged {row.unchanged:.3f}   inconclusive {row.inconclusive:.3f}")
    print("\n--compare on planted changes (simulated): 'unchanged' would be a miss; "
          "'regressed' is the power")
    for (r, shift), g in frame.loc[frame["shift"] > 0].groupby(["repetitions", "shift"],
                                                               sort=False):
        print(f"  R = {r}, +{shift:.0%}:")
        for row in g.itertuples():
            print(f"    {row.chain:<32} unchanged {_rate(row.unchanged, row.datasets)}   "
                  f"regressed {_rate(row.regressed, row.datasets)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=200,
                        help="datasets per (data, R, shift) cell (default 200)")
    parser.add_argument("--repetitions", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    t0 = time.perf_counter()
    frame = measure(repetitions=tuple(args.repetitions), datasets=args.datasets,
                    seed=args.seed)
    print_table(frame, stored_model(stored_nights()))
    print(f"\n(measured in {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
