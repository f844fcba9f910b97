"""Reference data assets: the project's copy of the reference files, loaded into the warehouse."""


import datetime as dt
from typing import Callable

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from kpr_pipeline.defs.resources import WarehouseResource, warehouse_asset
from kpr_pipeline.domain import reference
from kpr_pipeline.domain.geography import CodeHistory, statistics_geography
from kpr_pipeline.domain.landing import sha256_file
from kpr_pipeline.domain.population import parse_ssb_07459, population_current
from kpr_pipeline.settings import get_settings
from kpr_pipeline.warehouse.engine import bulk_insert

GROUP = "reference"
#: The first year a statistic maps codes for (IPLOS starts in 2007; 2006 covers a stray earlier code).
GEOGRAPHY_FIRST_YEAR = 2006


def _population() -> pd.DataFrame:
    frames = []
    for path in sorted((reference.REFERENCE_DIR / "ssb_07459").glob("*.csv")):
        frame = parse_ssb_07459(path)
        frame["source_file"] = path.name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


#: asset name -> (loader, source files, description)
REFERENCE_TABLES: dict[str, tuple[Callable[[], pd.DataFrame], list[str], str]] = {
    "ref_municipalities": (reference.municipalities, ["municipalities.csv"],
                           "Municipality codes and validity years (SSB via csdata, MIT/NLOD)."),
    "ref_municipality_changes": (reference.municipality_changes, ["municipality_changes.csv"],
                                 "Code changes since 2006 with split weights."),
    "ref_kuhr_takster": (reference.takster, ["kuhr_takster.csv"],
                         "KUHR tariff codes per service: contact flag, contact type, rank, typical amounts."),
    "ref_tjenestekoder": (reference.tjenestekoder, ["kpr_tjenestekoder.csv"],
                          "KPR/IPLOS service codes with group, unit and validity."),
    "ref_population": (_population, [p.name for p in sorted((reference.REFERENCE_DIR / "ssb_07459").glob("*.csv"))],
                       "SSB table 07459 population on 1 January by municipality, age and sex."),
}


def replace_table(warehouse, table: str, frame: pd.DataFrame) -> int:
    """Replace the whole table in one transaction: readers see the old or the new rows, never a mix."""
    with warehouse.begin() as conn:
        conn.execute(sa.text(f'DELETE FROM "{table}"'))
        return bulk_insert(conn, table, frame)


def _reference_asset(name: str) -> dg.AssetsDefinition:
    loader, files, description = REFERENCE_TABLES[name]

    @warehouse_asset(name=name, group_name=GROUP, description=description, kinds={"sql"})
    def _asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
        frame = loader()
        rows = replace_table(warehouse.get(), name, frame)
        checksums = source_checksums(files)
        return dg.MaterializeResult(
            metadata={
                "rows": rows,
                "source_files": dg.MetadataValue.json(checksums),
                "attribution": "Statistisk sentralbyrå (SSB), NLOD 2.0; compiled by Folkehelseinstituttet (MIT). "
                "See kpr_pipeline/reference_data/SOURCES.md.",
            }
        )

    return _asset


def source_checksums(files: list[str]) -> dict[str, str]:
    """SHA-256 of each reference source file, as recorded in the asset's metadata."""
    return {f: sha256_file(_source_path(f)) for f in files}


def _source_path(name: str):
    direct = reference.REFERENCE_DIR / name
    return direct if direct.exists() else reference.REFERENCE_DIR / "ssb_07459" / name


@warehouse_asset(
    group_name=GROUP, kinds={"sql"},
    deps=["ref_population", "ref_municipalities", "ref_municipality_changes"],
    description="Population on 1 January on current (2024) municipality borders, by age and sex: codes mapped "
    "forward with the split policy (KPR_SPLIT_POLICY), totals preserved; years after the last published "
    "year carried forward and marked imputed. The denominators of the statistics.",
)
def population_denominators(warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    w = warehouse.get()
    population = w.query("SELECT year, kommunenummer, age, sex, persons FROM ref_population")
    through = dt.date.today().year
    current = population_current(population, settings.split_policy, through).assign(split_policy=settings.split_policy)
    rows = replace_table(w, "population_current", current)
    published = current.loc[~current["imputed"], "year"]
    return dg.MaterializeResult(metadata={
        "rows": rows, "split_policy": settings.split_policy,
        "published_years": f"{int(published.min())}-{int(published.max())}",
        "imputed_years": dg.MetadataValue.json(sorted(int(y) for y in current.loc[current["imputed"], "year"].unique())),
        "national_population_last_published_year": int(current.loc[
            (current["year"] == published.max()) & (current["sex"] == "T"), "persons"].sum()),
    })


@warehouse_asset(
    group_name=GROUP, kinds={"sql"},
    deps=["ref_municipalities", "ref_municipality_changes"],
    description="The current (2024) division the statistics are published on, and per year which unit every "
    "municipality code is counted in, with the split weights (KPR_SPLIT_POLICY): the statistics map codes in SQL.",
)
def geography_current(warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    w = warehouse.get()
    history = CodeHistory(w.query("SELECT * FROM ref_municipalities"), w.query("SELECT * FROM ref_municipality_changes"))
    years = range(GEOGRAPHY_FIRST_YEAR, dt.date.today().year + 2)
    frames = statistics_geography(settings.split_policy, years, history)
    with w.begin() as conn:
        for table, frame in zip(("geography_units", "geography_code_units", "geography_split_weights"), frames):
            conn.execute(sa.text(f"DELETE FROM {table}"))
            bulk_insert(conn, table, frame.assign(split_policy=settings.split_policy))
    units, _, weights = frames
    return dg.MaterializeResult(metadata={
        "split_policy": settings.split_policy, "years": f"{years.start}-{years.stop - 1}",
        "units_by_level": dg.MetadataValue.json({k: int(v) for k, v in units["level"].value_counts().items()}),
        "split_units": dg.MetadataValue.json(sorted(weights["unit"].unique().tolist())),
    })


reference_assets = [_reference_asset(name) for name in REFERENCE_TABLES] + [population_denominators, geography_current]
