"""Disclosure control on small tables whose answer is known, and the attack that checks it."""

import datetime as dt

import numpy as np
import pandas as pd

from kpr_pipeline.statistics import attack, disclosure as dc
from kpr_pipeline.statistics.publication import _csv_ready, formula_safe, through_month_for

RULES = dc.TableRules(
    "example", keys=("kommunenummer", "kjonn"), independent=(), counts=("persons",), measures=("persons", "rate"),
    size="persons", hierarchies=(dc.Hierarchy("kommunenummer", dc.geography_parent),
                                 dc.Hierarchy("kjonn", dc.total_parent("T"))), empty_flag=None)


def _table(values: dict[tuple[str, str], int]) -> pd.DataFrame:
    """Municipalities 0301 (Oslo county 03) and 3201, 3203 (county 32), their counties and the country."""
    rows = []
    for (code, sex), n in values.items():
        rows.append({"kommunenummer": code, "kjonn": sex, "persons": n, "rate": n / 1000})
    frame = pd.DataFrame(rows)
    for level in (lambda c: c[:2] + "00" if not c.endswith("00") else "0000",):
        parts = frame[~frame["kommunenummer"].str.endswith("00")].copy()
        parts["kommunenummer"] = parts["kommunenummer"].map(level)
        counties = parts.groupby(["kommunenummer", "kjonn"], as_index=False)["persons"].sum()
        country = counties.assign(kommunenummer="0000").groupby(["kommunenummer", "kjonn"], as_index=False).sum()
        frame = pd.concat([frame, counties, country], ignore_index=True)
    totals = frame.groupby("kommunenummer", as_index=False)["persons"].sum().assign(kjonn="T")
    frame = pd.concat([frame, totals], ignore_index=True)
    frame["rate"] = frame["persons"] / 1000
    return frame


CELLS = {("0301", "1"): 40, ("0301", "2"): 52, ("3201", "1"): 3, ("3201", "2"): 30, ("3203", "1"): 25,
         ("3203", "2"): 27}


def test_primary_cell_gets_complements_in_every_hierarchy():
    frame = _table(CELLS)
    table, counts = dc.protect(frame, RULES, threshold=5)
    flagged = table.set_index(["kommunenummer", "kjonn"])["persons_suppressed"]
    assert flagged[("3201", "1")]  # 3 persons: primary
    assert counts["cells_primary"] == 1 and counts["cells_complementary"] >= 2
    # its sex total and its county must each have a second unknown: the smallest other cell
    assert flagged[("3201", "2")] or flagged[("3201", "T")]
    assert flagged[("3203", "1")] or flagged[("3200", "1")]
    assert table.loc[table["persons_suppressed"], ["persons", "rate"]].isna().all().all()  # rates go too
    assert table.loc[~table["persons_suppressed"], "persons"].notna().all()
    for measure in ("persons",):
        assert attack.attack_frame(table, RULES, measure).recovered == 0


def test_the_attack_finds_a_cell_that_was_only_primary_suppressed():
    frame = _table(CELLS)
    naive = frame.copy()
    hidden = (naive["kommunenummer"] == "3201") & (naive["kjonn"] == "1")
    naive["persons"] = naive["persons"].mask(hidden)
    naive["persons_suppressed"] = hidden
    result = attack.attack_frame(naive, RULES, "persons")
    assert result.suppressed == 1 and result.recovered == 1  # 3201 T minus 3201 2 gives it away


def test_zero_is_published_and_threshold_is_a_setting():
    frame = _table({**CELLS, ("3201", "1"): 0})
    table, counts = dc.protect(frame, RULES, threshold=5)
    assert counts["cells_primary"] == 0 and not table["persons_suppressed"].any()
    table, counts = dc.protect(frame, RULES, threshold=30)  # 3203's 25 and 27, and county 32's 25 men
    assert counts["cells_primary"] == 3
    assert attack.attack_frame(table, RULES, "persons").recovered == 0


def test_random_tables_never_leak():
    rng = np.random.default_rng(7)
    for _ in range(25):
        cells = {k: int(v) for k, v in zip(CELLS, rng.integers(0, 12, size=len(CELLS)))}
        table, _ = dc.protect(_table(cells), RULES, threshold=5)
        assert attack.attack_frame(table, RULES, "persons").recovered == 0


def test_text_cells_are_safe_in_a_spreadsheet():
    assert formula_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert formula_safe("+47") == "'+47" and formula_safe("@SUM(A1)") == "'@SUM(A1)"
    assert formula_safe("0301") == "0301" and formula_safe(-3.5) == -3.5  # numbers stay numbers
    frame = pd.DataFrame({"tjeneste": ["=1+1", "FASTLEGE"], "n": [1.0, 2.0]})
    ready = _csv_ready(frame)
    assert ready["tjeneste"].tolist() == ["'=1+1", "FASTLEGE"] and ready["n"].tolist() == [1, 2]


def test_publication_month_is_the_one_that_ended_30_days_before():
    assert through_month_for(dt.date(2024, 3, 1)) == dt.date(2024, 1, 1)  # February ended 1 day before
    assert through_month_for(dt.date(2024, 3, 31)) == dt.date(2024, 2, 1)  # 31 days after 29 February
    assert through_month_for(dt.date(2024, 1, 15)) == dt.date(2023, 11, 1)
