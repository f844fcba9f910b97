"""``kuhr_contacts_monthly`` and ``kuhr_contacts_annual`` (spec/statistics.md, items 1 and 2).

Each regning is placed by its own ``bostedskommune`` (mapped to the current division) and its age on
31 December of the treatment year. Credit notes and the regninger they annulled never count. A
regning without a contact (only tillegg takster) counts in ``regninger`` under kontakttype ``ingen``.
A year is ``preliminary`` until 1 August of the following year, judged on the run date.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from kpr_pipeline.statistics.cells import SEXES, TOTAL, AGE_GROUPS, CellSpec, Measure, age_group_sql, compute_cells, \
    events, persons, values_sql
from kpr_pipeline.statistics.denominators import POPULATION_CELLS_SQL, rate_sql
from kpr_pipeline.warehouse import Warehouse

NO_CONTACT = "ingen"
FIRST_YEAR = 2016

_SEX_AGE = (f"CROSS JOIN {values_sql([(s,) for s in [*SEXES, TOTAL]], ['kjonn'], 'sx')} "
            f"CROSS JOIN {values_sql([(a,) for a, _, _ in AGE_GROUPS] + [(TOTAL,)], ['age_group'], 'ag')}")

_COUNTED = "NOT c.kreditering AND NOT c.credited AND c.behandlingsmaaned BETWEEN :a AND :b"
_CONSULTATION = "is_contact AND kontakttype = 'konsultasjon'"
_YEAR = "CAST(EXTRACT(YEAR FROM c.behandlingsmaaned) AS INTEGER)"


def _base(period: str, kontakttype: str) -> str:
    return f"""
SELECT {period}, {_YEAR} AS map_year, c.bostedskommune AS code, c.tjeneste, {kontakttype} AS kontakttype,
       COALESCE(c.kjonn, '9') AS kjonn, {age_group_sql(f"{_YEAR} - c.fodselsaar")} AS age_group,
       c.pid AS person, c.is_contact, c.egenandel, c.refusjon
FROM kuhr_claims c WHERE {_COUNTED}"""


MONTHLY = CellSpec(
    table="kuhr_contacts_monthly", period="treatment_month",
    base_sql=_base("c.behandlingsmaaned AS treatment_month", f"COALESCE(c.kontakttype, '{NO_CONTACT}')"),
    dims=("tjeneste", "kontakttype"), totals={"kjonn": "'T'", "age_group": "'T'"},
    measures=(Measure("contacts", events("is_contact")),
              Measure("patients", persons("is_contact")),
              Measure("regninger", "COUNT(*)"),
              Measure("egenandel_sum", "COALESCE(SUM(egenandel), 0)", money=True),
              Measure("refusjon_sum", "COALESCE(SUM(refusjon), 0)", money=True)),
    combos_sql=f"""SELECT DISTINCT t.tjeneste, CASE WHEN t.kontakt THEN t.kontakttype ELSE '{NO_CONTACT}' END
                   AS kontakttype, sx.kjonn, ag.age_group, {FIRST_YEAR} AS first_year,
                   CAST(NULL AS INTEGER) AS last_year FROM ref_kuhr_takster t {_SEX_AGE}""",
)

ANNUAL = CellSpec(
    table="kuhr_contacts_annual", period="year",
    base_sql=_base(f"{_YEAR} AS year", "c.kontakttype"),
    dims=("tjeneste",), totals={"kjonn": "'T'", "age_group": "'T'"},
    measures=(Measure("contacts", events("is_contact")),
              Measure("consultations", events(_CONSULTATION)),
              Measure("patients", persons("is_contact")),
              Measure("patients_consultation", persons(_CONSULTATION)),
              Measure("regninger", "COUNT(*)")),
    combos_sql=f"""SELECT DISTINCT t.tjeneste, sx.kjonn, ag.age_group, {FIRST_YEAR} AS first_year,
                   CAST(NULL AS INTEGER) AS last_year FROM ref_kuhr_takster t {_SEX_AGE}""",
    extra={"preliminary": "g.year >= :preliminary_from"},
)


def first_preliminary_year(run_date: dt.date) -> int:
    """A year is preliminary until 1 August of the following year (spec), judged on the run date."""
    return run_date.year if run_date >= dt.date(run_date.year, 8, 1) else run_date.year - 1


def compute_monthly(warehouse: Warehouse, months: list[dt.date], policy: str) -> int:
    """Recompute the treatment months (first days) in one transaction; return the cells written."""
    params = {"a": months[0], "b": months[-1]}
    with warehouse.begin() as conn:
        return compute_cells(conn, MONTHLY, months, policy, params, "treatment_month BETWEEN :a AND :b")


def compute_annual(warehouse: Warehouse, years: list[int], policy: str, run_date: dt.date | None = None) -> int:
    """Recompute the years in one transaction: counts, population and the per-inhabitant figures."""
    run_date = run_date or dt.date.today()
    params = {"a": dt.date(years[0], 1, 1), "b": dt.date(years[-1], 12, 31), "ya": years[0], "yb": years[-1],
              "preliminary_from": first_preliminary_year(run_date)}
    with warehouse.begin() as conn:
        cells = compute_cells(conn, ANNUAL, years, policy, params, "year BETWEEN :ya AND :yb")
        conn.execute(sa.text(f"""
            UPDATE kuhr_contacts_annual AS t SET population = p.persons, population_imputed = p.imputed
            FROM ({POPULATION_CELLS_SQL}) p
            WHERE t.year BETWEEN :ya AND :yb AND t.year = p.year AND t.kommunenummer = p.geo
              AND t.kjonn = p.sex AND t.age_group = p.age_group"""), params)
        conn.execute(sa.text(f"""
            UPDATE kuhr_contacts_annual SET
              contacts_per_inhabitant = {rate_sql("contacts", "population")},
              consultations_per_inhabitant = {rate_sql("consultations", "population")},
              share_with_contact = {rate_sql("patients", "population")},
              share_with_consultation = {rate_sql("patients_consultation", "population")}
            WHERE year BETWEEN :ya AND :yb"""), params)
        return cells



#: The generator's calibration and Norway's published figures (spec/statistics.md): about 3.0 GP
#: consultations per inhabitant and 72 % with at least one, so about 4.2 consultations per GP patient.
#: Per patient, the figure does not depend on how much of the population the data covers, so it holds for
#: synthetic data at any ``--scale`` as for the national registry.
GP_CONSULTATIONS_PER_PATIENT = 3.0 / 0.72
GP_PLAUSIBLE_DEVIATION = 0.2

#: national GP consultations and patients with one per year, and the treatment months with regninger
NATIONAL_GP_SQL = """
SELECT a.year, a.consultations, a.patients_consultation, a.consultations_per_inhabitant,
       a.share_with_consultation, m.months
FROM kuhr_contacts_annual a
LEFT JOIN (SELECT CAST(EXTRACT(YEAR FROM treatment_month) AS INTEGER) AS year, COUNT(*) AS months
           FROM kuhr_contacts_monthly
           WHERE kommunenummer = '0000' AND tjeneste = 'FASTLEGE' AND kontakttype = 'konsultasjon'
             AND kjonn = 'T' AND age_group = 'T' AND regninger > 0
           GROUP BY CAST(EXTRACT(YEAR FROM treatment_month) AS INTEGER)) m ON m.year = a.year
WHERE a.kommunenummer = '0000' AND a.tjeneste = 'FASTLEGE' AND a.kjonn = 'T' AND a.age_group = 'T'
  AND a.year BETWEEN :ya AND :yb
"""


def implausible_gp_years(national: pd.DataFrame) -> tuple[dict[int, float], list[int]]:
    """Years whose national GP consultations per patient are more than GP_PLAUSIBLE_DEVIATION from the
    calibration, among the complete years (consultations in all 12 months); and the years not judged."""
    complete = national[national["months"].fillna(0) >= 12]
    per_patient = (complete["consultations"] / complete["patients_consultation"].where(
        complete["patients_consultation"] > 0)).astype(float)
    off = (per_patient / GP_CONSULTATIONS_PER_PATIENT - 1).abs() > GP_PLAUSIBLE_DEVIATION
    bad = {int(y): None if pd.isna(v) else round(float(v), 3)
           for y, v, o in zip(complete["year"], per_patient, off) if o or pd.isna(v)}
    return bad, sorted(int(y) for y in national["year"] if y not in set(complete["year"]))
