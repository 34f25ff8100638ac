"""docs/results.md (and docs/robustness.md, docs/bitslice.md, docs/larq.md): every table on the
page is what benchmarks/report.py prints from the committed JSON records, every record it links
exists, and the page stays a page (< 500 lines)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("onebit_results_report", REPO / "benchmarks" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def page(report) -> str:
    return report.PAGE.read_text()


def test_results_page_tables_equal_the_records(report, page):
    assert report.differences(page) == [], "run: python benchmarks/report.py --write"


def test_results_page_shows_every_table_once(report, page):
    names = [m.group(1) for m in report.MARKER.finditer(page)]
    assert sorted(names) == sorted(report.TABLES)


def test_results_page_check_finds_an_edited_figure(report, page):
    # One figure changed inside a generated table must be reported, and --write must restore it.
    m = re.search(r"<!-- table: layers -->\n.*?\| (\d+\.\d{3}) ", page, re.S)
    assert m, "layers table has no figure"
    edited = page[:m.start(1)] + "9" + page[m.start(1) + 1:]
    assert edited != page
    assert report.differences(edited) == ["layers"]
    assert report.render(edited) == report.render(page)


def test_results_page_rejects_unknown_table(report):
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        report.render("<!-- table: nope -->\n<!-- /table -->")
    assert report.differences("<!-- table: nope -->\n<!-- /table -->") == ["nope"]


def test_results_page_links_exist_and_stays_short(page):
    links = re.findall(r"\]\(\.\./([^)]+)\)", page)
    assert links
    missing = [p for p in links if not (REPO / p).is_file()]
    assert missing == []
    assert len(page.splitlines()) < 500


def test_robustness_page_tables_equal_the_records(report):
    page = report.ROBUSTNESS_PAGE.read_text()
    names = [m.group(1) for m in report.MARKER.finditer(page)]
    assert sorted(names) == sorted(report.ROBUSTNESS_TABLES)
    assert report.differences(page, report.ROBUSTNESS_TABLES) == [], "run: python benchmarks/report.py --write"


def _page_equals_its_records(report, path, tables):
    page = path.read_text()
    names = [m.group(1) for m in report.MARKER.finditer(page)]
    assert sorted(names) == sorted(tables)
    assert report.differences(page, tables) == [], "run: python benchmarks/report.py --write"
    links = re.findall(r"\]\(\.\./([^)]+)\)", page)
    assert links and [p for p in links if not (REPO / p).is_file()] == []


def test_bitslice_page_tables_equal_the_records(report):
    _page_equals_its_records(report, report.BITSLICE_PAGE, report.BITSLICE_TABLES)


def test_larq_page_tables_equal_the_records(report):
    _page_equals_its_records(report, report.LARQ_PAGE, report.LARQ_TABLES)


def test_larq_page_lists_every_model_of_the_agreement_record(report):
    # a model the engine cannot run (not exported, or not built by Larq) keeps its row and its reason
    rec = report.load(f"{report.PEERS}/larq_agreement.json")[0]
    text = report.t_larq_agreement()
    for m in rec["models"]:
        assert f"| {m['model']} |" in text
        for mode in ("float_boundary", "integer"):
            if "export_error" in m.get(mode, {}):
                assert f"- {m['model']} (" in text
