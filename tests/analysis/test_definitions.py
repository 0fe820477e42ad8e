"""Definitions generated from the code's constants, so the words cannot drift from it."""

from __future__ import annotations

from analysis import changepoints, definitions, history


def _dashboard_text() -> str:
    values = {"short_nights": 7, "long_nights": 30, "p_value": 0.001, "min_segment": 3}
    shown = definitions.define(definitions.DASHBOARD, values, definitions.DASHBOARD_TERMS)
    return " ".join(f"{term}: {meaning}" for term, meaning in shown.items)


def test_the_night_value_and_direction_are_the_codes():
    text = _dashboard_text()
    for metric in history.RTT_PERCENTILES:
        assert metric in text
    assert "geometric mean" in text
    for metric in history.HIGHER_IS_BETTER:
        assert f"{metric}" in text


def test_the_change_point_test_is_named_as_the_code_runs_it():
    term, meaning = definitions.DASHBOARD_TERMS["dashboard.change_point"]
    if getattr(changepoints, "DEFINITION", None) is not None:
        assert (term, meaning) == changepoints.DEFINITION
        return
    # the detector as it stands: Student's pooled test and the excursion test, not Welch's
    assert "Student's two-sample t test (pooled variance)" in meaning
    assert "excursion" in meaning
    assert "Welch's two-sample t-test" not in meaning
    assert f"{100 * changepoints.CONFIDENCE:g} % Welch confidence interval" in meaning
