"""Night values read from a history: the nightly catalog, or a folder of campaign folders.

Feeds :func:`analysis.between_nights.components` (the between-night variation that
``--compare --history DIR`` uses): one row per (night, scenario, metric) with the
night's mean on the comparison's scale, the variance of its repetitions and their
count (:data:`analysis.between_nights.NIGHT_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import history, replication, tables
from analysis.between_nights import NIGHT_COLUMNS, _concat, campaign_nights
from analysis.load import InputError, load_campaign
from analysis.model import rtt_by_repetition
from kvmnetlab.store import Store
from kvmnetlab.store_format import MANIFEST

# The catalog's metrics that feed each comparison metric (the first present is used; the
# report's loss is the rate test's when a campaign ran one, else ping's).
CATALOG_METRICS = {"median": ("rtt_p50_us",), "loss": ("rate_loss_pct", "ping_loss_pct")}


def nights_from_campaigns(folders: Iterable[str | Path]) -> pd.DataFrame:
    """Night values of campaign folders (each one night), read like the report reads them."""
    frames = []
    for folder in folders:
        c = load_campaign(folder)
        reps = replication.repetition_summary(rtt_by_repetition(c.rtt, c.scenario_order))
        loss = tables.loss_per_repetition(c.ping_summary, c.rate)
        frames.append(campaign_nights(c.campaign_id, reps, loss))
    return _concat(frames)


def nights_from_catalog(catalog: pd.DataFrame) -> pd.DataFrame:
    """Night values from the nightly catalog (:func:`analysis.history.read_catalog`): the done
    nights of its newest segment. ``median``: the log of rtt_p50_us's night value, its
    repetitions' variance on the log scale taken as (sd / value)^2 (the delta method);
    ``loss``: rate_loss_pct (else ping_loss_pct) as it is."""
    done = catalog.loc[(catalog["outcome"] == "done") & catalog["metric"].notna()]
    if done.empty:
        return pd.DataFrame(columns=NIGHT_COLUMNS)
    seg = history.segments(catalog)
    newest = seg.loc[seg["segment"] == seg["segment"].max(), "night"]
    done = done.loc[done["night"].isin(set(newest))]
    frames = []
    for metric, sources in CATALOG_METRICS.items():
        rows = done.loc[done["metric"].isin(sources)].copy()
        rows["_rank"] = rows["metric"].map({m: i for i, m in enumerate(sources)})
        rows = rows.sort_values("_rank", kind="stable").drop_duplicates(["night", "scenario"])
        value = rows["value"].to_numpy(dtype=float)
        sd = rows["sd"].to_numpy(dtype=float)
        if metric == "median":
            ok = value > 0
            rows, value, sd = rows.loc[ok], value[ok], sd[ok]
            mean, within = np.log(value), (sd / value) ** 2
        else:
            mean, within = value, sd**2
        frames.append(pd.DataFrame({"night": rows["night"].to_numpy(), "scenario":
                                    rows["scenario"].to_numpy(), "metric": metric,
                                    "mean": mean, "within_var": within,
                                    "n_reps": rows["n_reps"].to_numpy(dtype=np.int64)}))
    return _concat(frames)


def read_nights(folder: str | Path) -> tuple[pd.DataFrame, str]:
    """The night values of a history folder, and what was read (in words).

    The catalog ``folder``/nights.parquet when there is one, else every campaign
    folder directly inside ``folder``. Raises :class:`analysis.load.InputError`
    when there is neither.
    """
    folder = Path(folder)
    if (folder / history.CATALOG).exists():
        nights = nights_from_catalog(history.read_catalog(folder))
        return nights, (f"{folder}: the nightly catalog ({history.CATALOG}), "
                        f"{nights['night'].nunique()} done nights of its newest segment")
    campaigns = sorted(p for p in folder.iterdir() if Store(p).manifest_path.exists()) \
        if folder.is_dir() else []
    if not campaigns:
        raise InputError(folder, None, f"a history needs {history.CATALOG} or campaign "
                         f"folders (with {MANIFEST}) inside it; found neither")
    nights = nights_from_campaigns(campaigns)
    return nights, f"{folder}: {len(campaigns)} campaign folders, one night each"
