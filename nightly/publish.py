"""After a night: its report, the history catalog, change points, the dashboard.

The analysis modules are imported here, lazily (plain imports inside the
functions), and only here: this is the driver's boundary with analysis.history,
analysis.changepoints and analysis.dashboard.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightly.status import CHANGE_FIELDS

REPORT_TIMEOUT_S = 3600


class PublishError(RuntimeError):
    """A step after the campaign failed; the message names the step."""


def _unavailable(exc: ImportError) -> PublishError:
    return PublishError(f"{exc.name or 'analysis'} is not available ({exc}); the history, "
                        "change points and dashboard need it")


def _history() -> Any:
    """analysis.history."""
    try:
        from analysis import history
    except ImportError as exc:
        raise _unavailable(exc) from None
    return history


def _analysis() -> tuple[Any, Any, Any]:
    """analysis.history, analysis.changepoints and analysis.dashboard."""
    try:
        from analysis import changepoints, dashboard, history
    except ImportError as exc:
        raise _unavailable(exc) from None
    return history, changepoints, dashboard


# --------------------------------------------------------------------------- the report


def report_is_fresh(campaign: Path) -> bool:
    """report/index.html is newer than the manifest and every data table (the playbook's
    report phase wrote it from this campaign's final data)."""
    from kvmnetlab.store import Store

    index = campaign / "report" / "index.html"
    if not index.is_file():
        return False
    inputs = Store(campaign).analysis_inputs()
    newest = max((p.stat().st_mtime for p in inputs if p.exists()), default=0.0)
    return index.stat().st_mtime >= newest


def build_report(campaign: Path, repo: Path) -> Path:
    """The campaign's report (``python -m analysis CAMPAIGN``) unless it is already fresh."""
    report = campaign / "report"
    if report_is_fresh(campaign):
        return report
    cmd = [sys.executable, "-m", "analysis", str(campaign)]
    try:
        done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False,
                              timeout=REPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PublishError(f"report: python -m analysis did not finish within "
                           f"{REPORT_TIMEOUT_S} s") from None
    if done.returncode != 0:  # 3 (a regression against --compare) is not asked for here
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PublishError(f"report: python -m analysis exited {done.returncode}: {tail[0]}")
    return report


# --------------------------------------------------------------------------- the history


@dataclass
class Published:
    catalog: Any
    changes: Any
    dashboard: Path | None = None
    warnings: list[str] = field(default_factory=list)


def read_catalog(history_dir: Path) -> Any:
    """history/nights.parquet (empty when there is none)."""
    return _history().read_catalog(history_dir)


def record_night(history_dir: Path, campaign: Path | None, *, night: str, outcome: str,
                 reason: str | None, started_at: str) -> Any:
    """Put the night into history/nights.parquet, replacing its earlier rows: its values when
    it is done (``analysis.history.night_rows``), else one outcome row; return the catalog."""
    history = _history()
    if outcome == "done":
        rows = history.night_rows(campaign, night=night)
    else:
        rows = history.outcome_row(night=night, started_at=started_at, outcome=outcome,
                                   reason=reason,
                                   campaign_id=campaign.name if campaign is not None else None)
    return history.update_catalog(history_dir, rows)


def analyse(history_dir: Path, catalog: Any, *, p_value: float | None,
            min_segment: int | None) -> Published:
    """Change points over the catalog, its segments, and history/dashboard.html."""
    history, changepoints, dashboard = _analysis()
    p = p_value if p_value is not None else changepoints.DEFAULT_P_VALUE
    m = min_segment if min_segment is not None else changepoints.DEFAULT_MIN_SEGMENT
    changes = changepoints.detect(catalog, p_value=p, min_segment=m)
    segments = history.segments(catalog)
    page = dashboard.render_dashboard(catalog, segments, changes, history_dir / "dashboard.html",
                                      p_value=p, min_segment=m)
    return Published(catalog=catalog, changes=changes, dashboard=Path(page))


# --------------------------------------------------------------------------- new changes


def _plain(value: Any) -> Any:
    """A JSON-able Python value (numpy scalars unwrapped, NaN -> None)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and not isinstance(value, bool | int | float | str):
        try:
            import pandas as pd

            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        return str(value)
    return value


def change_records(changes: Any) -> list[dict[str, Any]]:
    """Change points (a DataFrame with analysis.changepoints' columns) as plain dicts."""
    if changes is None or len(changes) == 0:
        return []
    records = changes.to_dict("records") if hasattr(changes, "to_dict") else list(changes)
    return [{key: _plain(value) for key, value in record.items()} for record in records]


def change_key(record: dict[str, Any]) -> tuple[str, str, str]:
    return (str(record["scenario"]), str(record["metric"]), str(record["night"]))


def load_reported(path: Path) -> list[dict[str, Any]]:
    """history/reported.json: the change points a status.json already reported."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise PublishError(f"{path}: cannot be read ({exc}); fix or remove it") from None
    entries = document.get("reported") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise PublishError(f"{path}: reported: must be a list")
    return entries


# A change found again a few nights off (the detector re-estimates where a change happened as
# nights come in) is the change already reported, not a new one: same scenario, metric and
# direction, nights at most this many days apart (one night a day: the detector's default
# minimum segment). Night ids that are not timestamps (%Y%m%dT%H%M%SZ) must match exactly.
SAME_CHANGE_DAYS = 3
NIGHT_ID_FORMAT = "%Y%m%dT%H%M%SZ"


def night_time(night: Any) -> Any:
    """The night id as a UTC datetime, None when it is not one."""
    import datetime as dt

    try:
        return dt.datetime.strptime(str(night), NIGHT_ID_FORMAT)
    except ValueError:
        return None


def same_change(record: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Whether ``record`` (a change found tonight) is the reported ``entry``."""
    if change_key(record) == change_key(entry):
        return True
    if (str(record["scenario"]), str(record["metric"])) != (str(entry["scenario"]),
                                                              str(entry["metric"])):
        return False
    if entry.get("direction") not in (None, record.get("direction")):
        return False
    a, b = night_time(record["night"]), night_time(entry["night"])
    if a is None or b is None:
        return False
    return abs((a - b).total_seconds()) <= SAME_CHANGE_DAYS * 86400


def alerts(record: dict[str, Any]) -> bool:
    """A change (not an outlier night) that the detector marks alerting: a key metric, its
    q-value within the FDR level, its size above the metric's resolution. Records without
    these fields (the previous detector's) alert."""
    return record.get("kind", "change") == "change" and record.get("alerting", True) is not False


def new_changes(changes: list[dict[str, Any]], reported: list[dict[str, Any]]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The alerting regressions and progressions among ``changes`` not reported before (nor
    within :data:`SAME_CHANGE_DAYS` of a reported one), each as status.json lists them
    (:data:`nightly.status.CHANGE_FIELDS`). Outlier nights and changes that do not alert
    (other metrics, below the resolution) stay on the dashboard only."""
    regressions, progressions = [], []
    seen = list(reported)
    for record in changes:
        if not alerts(record) or any(same_change(record, entry) for entry in seen):
            continue
        item = {key: record.get(key) for key in CHANGE_FIELDS}
        if record.get("direction") == "regression":
            regressions.append(item)
        elif record.get("direction") == "progression":
            progressions.append(item)
        else:
            continue
        seen.append({**item, "direction": record.get("direction")})
    return regressions, progressions


def save_reported(path: Path, reported: list[dict[str, Any]], regressions: list[dict],
                  progressions: list[dict], *, night: str) -> None:
    from kvmnetlab.store import atomic_write_json

    added = [{"scenario": c["scenario"], "metric": c["metric"], "night": c["night"],
              "direction": direction, "reported_by": night}
             for direction, items in (("regression", regressions), ("progression", progressions))
             for c in items]
    if added:
        atomic_write_json(path, {"format_version": 1, "reported": [*reported, *added]})
