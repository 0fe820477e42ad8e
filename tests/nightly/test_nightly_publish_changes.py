"""Which of the detector's rows become a night's regressions and progressions (status.json,
REGRESSION lines, exit 1): alerting changes only, each reported once."""

from __future__ import annotations

from nightly import publish


def change(metric="rtt_p50_us", night="20261201T021500Z", direction="regression", **more):
    row = {"scenario": "virtio", "metric": metric, "night": night, "change_pct": 12.0,
           "ci_low_pct": 5.0, "ci_high_pct": 19.0, "p_value": 1e-5, "differs": "x",
           "direction": direction, "kind": "change", "alerting": True}
    row.update(more)
    return row


def test_only_alerting_changes_are_reported():
    rows = [change(), change(metric="rtt_p90_us", alerting=False),
            change(metric="rtt_p99_us", kind="outlier", alerting=False),
            change(metric="ndr_pps", direction="progression")]
    regressions, progressions = publish.new_changes(rows, [])
    assert [r["metric"] for r in regressions] == ["rtt_p50_us"]
    assert [r["metric"] for r in progressions] == ["ndr_pps"]
    assert set(regressions[0]) == {"scenario", "metric", "night", "change_pct", "ci_low_pct",
                                   "ci_high_pct", "p_value", "differs"}


def test_rows_of_the_previous_detector_alert():
    old = {k: v for k, v in change().items() if k not in ("kind", "alerting")}
    assert publish.new_changes([old], [])[0] == [{k: old[k] for k in
                                                  publish.CHANGE_FIELDS}]


def test_a_change_found_again_a_night_or_two_off_is_not_new():
    reported = [{"scenario": "virtio", "metric": "rtt_p50_us", "night": "20261201T021500Z",
                 "direction": "regression", "reported_by": "20261204T021500Z"}]
    for night, new in (("20261201T021500Z", False), ("20261202T021500Z", False),
                       ("20261204T021500Z", False), ("20261205T021500Z", True),
                       ("20261129T021500Z", False)):
        regressions, _ = publish.new_changes([change(night=night)], reported)
        assert bool(regressions) == new, night
    # another direction, another metric, or night ids that are not timestamps: new
    assert publish.new_changes([change(night="20261202T021500Z", direction="progression")],
                               reported)[1]
    assert publish.new_changes([change(metric="rtt_p99_us")], reported)[0]
    odd = [{**reported[0], "night": "n5"}]
    assert publish.new_changes([change(night="n6")], odd)[0]
    assert not publish.new_changes([change(night="n5")], odd)[0]


def test_two_rows_of_one_change_tonight_are_reported_once():
    rows = [change(night="20261201T021500Z"), change(night="20261202T021500Z")]
    regressions, _ = publish.new_changes(rows, [])
    assert len(regressions) == 1
