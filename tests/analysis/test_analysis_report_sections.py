"""The report's section declaration, its definitions and its folder swap."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis import definitions
from analysis.report import Options, UsageError, build_report
from analysis.report_folder import MARKER, staged
from analysis.sections import SECTIONS
from tests.helpers import TESTS

CAMPAIGNS = TESTS / "analysis_data" / "campaigns"


def _copy(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(CAMPAIGNS / name, tmp_path / name))


def test_every_definition_is_declared_by_a_section_and_exists():
    declared = {key for spec in SECTIONS for key in spec.definitions}
    assert declared == set(definitions.TERMS)
    assert len({spec.key for spec in SECTIONS}) == len(SECTIONS)


def test_the_declaration_covers_every_section_figure_and_table_of_a_report(tmp_path):
    new, old = _copy(tmp_path, "calib10"), _copy(tmp_path, "quickstart1")
    out = tmp_path / "report"
    build_report(Options(new, out=out, compare=(old,), resamples=200))
    headings = [line[3:] for line in (out / "report.md").read_text().splitlines()
                if line.startswith("## ")]
    titles = [spec.title for spec in SECTIONS]
    assert any(h.startswith("A/A control") for h in headings)  # calib10 has a control
    # every heading is declared, in the declaration's order
    positions = [next(i for i, t in enumerate(titles) if h.startswith(t)) for h in headings]
    assert positions == sorted(positions)
    # every section but the competing guests' (shown only with N > 1 guests or containers;
    # tests/analysis/test_analysis_competing.py shows it)
    assert {titles[i] for i in positions} == {s.title for s in SECTIONS if s.key != "competing"}
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert figures == {f for spec in SECTIONS for f in spec.figures
                       if spec.key not in ("throughput", "competing")}


def test_the_folder_swap_leaves_the_old_report_on_failure(tmp_path):
    out = tmp_path / "report"
    with staged(out) as work:
        (work / "report.md").write_text("first\n")
    assert (out / MARKER).exists() and (out / "report.md").read_text() == "first\n"
    with pytest.raises(RuntimeError), staged(out) as work:
        (work / "report.md").write_text("second\n")
        raise RuntimeError("failed half-way")
    assert (out / "report.md").read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_folder_that_is_not_a_report_is_not_replaced(tmp_path):
    campaign = _copy(tmp_path, "quickstart1")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep\n")
    with pytest.raises(UsageError, match="not a report folder"):
        build_report(Options(campaign, out=out))
    assert (out / "notes.txt").read_text() == "keep\n"
