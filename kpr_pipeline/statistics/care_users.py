"""``care_users_annual`` and ``care_gp_contacts`` (spec/statistics.md, items 4 and 5).

Each service decision is placed by its reporting municipality (``kommunenummer``, mapped to the
current division) and the person's age on 31 December. A user with several decisions in one group
counts once in that group. Hour-based services (``enhet`` ``timer``) give the mean hours per week of
the users who have one on 31 December; stays (``dogn``) give the days in the year. Users per 1000
inhabitants aged 67+ and 80+ are given for the groups where that is customary (home services and
institutions), on the cells that cover all ages. KPR years come from ``care_services`` (current
submissions only), IPLOS years (2007-2017, 2017 as the bridge row) from ``iplos_services``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from kpr_pipeline.statistics.cells import AGE_GROUPS, SEXES, TOTAL, CellSpec, Measure, age_group_sql, compute_cells, \
    persons, values_sql
from kpr_pipeline.statistics.denominators import POPULATION_CELLS_SQL, rate_sql
from kpr_pipeline.warehouse import Warehouse

KPR, IPLOS = "KPR", "IPLOS"
#: Groups whose users are customarily also given per 1000 inhabitants aged 67+ and 80+.
ELDERLY_GROUPS = ("hjemmetjenester", "institusjon")
#: The services whose contacts ``care_gp_contacts`` counts.
GP_SERVICES = ("FASTLEGE", "LEGEVAKT")

_DEC31 = "MAKE_DATE(s.year, 12, 31)"
_JAN1 = "MAKE_DATE(s.year, 1, 1)"


def _base(source_table: str, person: str, year: str) -> str:
    return f"""
SELECT s.year, s.year AS map_year, s.kommunenummer AS code, t.gruppe AS tjenestegruppe, s.tjenestekode,
       COALESCE(s.kjonn, '9') AS kjonn, {age_group_sql("s.year - s.fodselsaar")} AS age_group,
       s.year - s.fodselsaar AS age, s.person, t.enhet,
       s.fra_dato <= {_DEC31} AND (s.til_dato IS NULL OR s.til_dato >= {_DEC31}) AS active_dec31,
       s.timer_per_uke,
       CASE WHEN t.enhet = 'dogn' THEN
         (CASE WHEN s.til_dato IS NULL OR s.til_dato > {_DEC31} THEN {_DEC31} ELSE s.til_dato END)
         - (CASE WHEN s.fra_dato < {_JAN1} THEN {_JAN1} ELSE s.fra_dato END) + 1 END AS stay_days
FROM (SELECT {year} AS year, kommunenummer, tjenestekode, kjonn, fodselsaar, {person} AS person, fra_dato, til_dato,
             timer_per_uke FROM {source_table}) s
JOIN ref_tjenestekoder t ON t.kode = s.tjenestekode
WHERE s.year BETWEEN :ya AND :yb"""


_SEX_AGE = (f"CROSS JOIN {values_sql([(s,) for s in [*SEXES, TOTAL]], ['kjonn'], 'sx')} "
            f"CROSS JOIN {values_sql([(a,) for a, _, _ in AGE_GROUPS] + [(TOTAL,)], ['age_group'], 'ag')}")

#: every service with its group and validity, and every group (tjenestekode empty) over its services' years
_SERVICE_COMBOS = f"""
SELECT c.tjenestegruppe, c.tjenestekode, sx.kjonn, ag.age_group, c.first_year, c.last_year FROM (
  SELECT gruppe AS tjenestegruppe, kode AS tjenestekode, gyldig_fra AS first_year, gyldig_til AS last_year
  FROM ref_tjenestekoder
  UNION ALL
  SELECT gruppe, CAST(NULL AS INTEGER), MIN(gyldig_fra),
         CASE WHEN BOOL_OR(gyldig_til IS NULL) THEN CAST(NULL AS INTEGER) ELSE MAX(gyldig_til) END
  FROM ref_tjenestekoder GROUP BY gruppe) c {_SEX_AGE}"""

def _users_spec(source: str) -> CellSpec:
    base = (_base("care_services", "pid", "reporting_year") if source == KPR
            else _base("iplos_services", "pseudonym", "reporting_year"))
    hours_active = "active_dec31 AND enhet = 'timer' AND timer_per_uke IS NOT NULL"
    return CellSpec(
        table="care_users_annual", period="year", base_sql=base, dims=("tjenestegruppe",),
        totals={"tjenestekode": "NULL", "kjonn": "'T'", "age_group": "'T'"},
        measures=(Measure("users_during_year", persons()),
                  Measure("users_dec31", persons("active_dec31")),
                  Measure("users_67plus", persons("age >= 67")),
                  Measure("users_80plus", persons("age >= 80")),
                  Measure("users_with_hours_dec31", persons(hours_active)),
                  Measure("hours_per_week_sum", f"COALESCE(SUM(CASE WHEN {hours_active} THEN timer_per_uke END), 0)",
                          money=True),
                  Measure("days", "COALESCE(SUM(stay_days), 0)")),
        combos_sql=_SERVICE_COMBOS,
        extra={"source": f"'{source}'", "preliminary": ":preliminary"},
        total_types={"tjenestekode": "INTEGER"},
    )


KPR_USERS, IPLOS_USERS = _users_spec(KPR), _users_spec(IPLOS)

GP_CONTACTS = CellSpec(
    table="care_gp_contacts", period="year",
    base_sql=f"""
SELECT u.year, u.year AS map_year, u.code, u.tjenestegruppe, u.person, c.regning_id
FROM (SELECT DISTINCT s.reporting_year AS year, s.kommunenummer AS code, t.gruppe AS tjenestegruppe, s.pid AS person
      FROM care_services s JOIN ref_tjenestekoder t ON t.kode = s.tjenestekode
      WHERE s.reporting_year BETWEEN :ya AND :yb) u
LEFT JOIN (SELECT pid, regning_id, CAST(EXTRACT(YEAR FROM behandlingsmaaned) AS INTEGER) AS year FROM kuhr_claims
           WHERE is_contact AND NOT kreditering AND NOT credited AND behandlingsmaaned BETWEEN :a AND :b
             AND tjeneste IN ({", ".join(f"'{s}'" for s in GP_SERVICES)})) c
  ON c.pid = u.person AND c.year = u.year""",
    dims=("tjenestegruppe",), totals={},
    measures=(Measure("users", persons()),
              Measure("users_with_gp_contact", persons("regning_id IS NOT NULL")),
              Measure("gp_contacts", "COUNT(DISTINCT regning_id)")),
    combos_sql="""SELECT gruppe AS tjenestegruppe, MIN(gyldig_fra) AS first_year,
                  CASE WHEN BOOL_OR(gyldig_til IS NULL) THEN CAST(NULL AS INTEGER) ELSE MAX(gyldig_til) END AS last_year
                  FROM ref_tjenestekoder GROUP BY gruppe""",
    extra={"preliminary": ":preliminary"},
)


def compute_users(warehouse: Warehouse, years: list[int], source: str, policy: str, preliminary: bool) -> int:
    """Recompute ``source``'s rows of ``years`` in one transaction: counts, population and rates."""
    spec = KPR_USERS if source == KPR else IPLOS_USERS
    params = {"ya": years[0], "yb": years[-1], "preliminary": preliminary, "source": source}
    where = "year BETWEEN :ya AND :yb AND source = :source"
    elderly = ", ".join(f"'{g}'" for g in ELDERLY_GROUPS)
    with warehouse.begin() as conn:
        cells = compute_cells(conn, spec, years, policy, params, where)
        conn.execute(sa.text(f"""
            UPDATE care_users_annual AS t SET population = p.persons, population_67plus = p.persons_67plus,
                   population_80plus = p.persons_80plus, population_imputed = p.imputed
            FROM ({POPULATION_CELLS_SQL}) p
            WHERE t.year BETWEEN :ya AND :yb AND t.source = :source AND t.year = p.year
              AND t.kommunenummer = p.geo AND t.kjonn = p.sex AND t.age_group = p.age_group"""), params)
        conn.execute(sa.text(f"""
            UPDATE care_users_annual SET
              users_per_1000 = {rate_sql("users_during_year", "population", 1000)},
              users_per_1000_67plus = CASE WHEN age_group = 'T' AND tjenestegruppe IN ({elderly})
                                      THEN {rate_sql("users_67plus", "population_67plus", 1000)} END,
              users_per_1000_80plus = CASE WHEN age_group = 'T' AND tjenestegruppe IN ({elderly})
                                      THEN {rate_sql("users_80plus", "population_80plus", 1000)} END,
              mean_hours_per_week = {rate_sql("hours_per_week_sum", "users_with_hours_dec31")}
            WHERE {where}"""), params)
        return cells


def compute_gp_contacts(warehouse: Warehouse, years: list[int], policy: str, preliminary: bool) -> int:
    """Recompute ``years`` of ``care_gp_contacts`` in one transaction."""
    params = {"ya": years[0], "yb": years[-1], "a": dt.date(years[0], 1, 1), "b": dt.date(years[-1], 12, 31),
              "preliminary": preliminary}
    where = "year BETWEEN :ya AND :yb"
    with warehouse.begin() as conn:
        cells = compute_cells(conn, GP_CONTACTS, years, policy, params, where)
        conn.execute(sa.text(f"UPDATE care_gp_contacts SET gp_contacts_per_user = "
                             f"{rate_sql('gp_contacts', 'users')} WHERE {where}"), params)
        return cells


def mark_preliminary(warehouse: Warehouse, year: int, preliminary: bool) -> None:
    """Set the ``preliminary`` flag of a reporting year's care statistics (a steward's accepted gap can make
    the year final without any new data: the counts stay, the flag and ``computed_at`` change, so the next
    publication is written)."""
    now = dt.datetime.now(dt.timezone.utc)
    with warehouse.begin() as conn:
        for table in ("care_users_annual", "care_gp_contacts"):
            source = " AND source = 'KPR'" if table == "care_users_annual" else ""
            conn.execute(sa.text(f"UPDATE {table} SET preliminary = :p, computed_at = :now WHERE year = :y{source} "
                                 "AND preliminary <> :p"), {"p": preliminary, "now": now, "y": year})
