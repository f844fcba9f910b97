"""Statistics assets. Each is partitioned like its input and refreshed when that input's partition changes
(eager automation; the KUHR, care and IPLOS jobs also run them with their partitions), so nothing else is
recomputed. The statistics are computed in SQL inside the warehouse (``kpr_pipeline/statistics``)."""


import datetime as dt

import dagster as dg

from kpr_pipeline.defs.care.partitions import reporting_year_partitions
from kpr_pipeline.defs.iplos.assets import iplos_year_partitions
from kpr_pipeline.defs.kuhr.partitions import monthly_statistics_backfill_policy, treatment_month_partitions
from kpr_pipeline.defs.resources import WarehouseResource, warehouse_asset
from kpr_pipeline.defs.run_partitions import partition_months, partition_years
from kpr_pipeline.defs.statistics.partitions import MONTHS_OF_YEAR, treatment_year_partitions
from kpr_pipeline.settings import get_settings
from kpr_pipeline.statistics import care_users, delivery_completeness, kuhr_contacts, publication
from kpr_pipeline.statistics.cells import split_policy_of

GROUP = "statistics"
#: Eager, but for every partition: out of the box eager only looks at the latest time window, and a credit
#: note in 2024 for a 2021 claim must refresh 2021 (spec). Nothing else is requested: only partitions whose
#: inputs were updated (or that are newly missing with their inputs present).
EAGER = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
GEOGRAPHY = ["geography_current"]


def _national(w, table: str, where: str, columns: str, **params) -> dict:
    row = w.query(f"SELECT {columns} FROM {table} WHERE kommunenummer = '0000' AND {where}", **params)
    return {k: (None if v is None else float(v)) for k, v in row.iloc[0].to_dict().items()} if len(row) else {}


@warehouse_asset(
    group_name=GROUP, partitions_def=treatment_month_partitions, backfill_policy=monthly_statistics_backfill_policy,
    deps=["kuhr_treatment_months"], kinds={"sql"}, automation_condition=EAGER,
    description="The reporting-delay triangle: per treatment month, counted regninger by months of delay (0-6, "
    "6 = 6 or more) and the cumulative share of the month's current total.",
)
def kuhr_delivery_completeness(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    months = partition_months(context)
    table = delivery_completeness.compute(warehouse.get(), months[0], months[-1])
    within = table[table["delay_months"] == 0]["share_of_total"]
    return dg.MaterializeResult(metadata={
        "months": len(months), "regninger": int(table["regninger"].sum()),
        "median_share_in_treatment_month": float(within.median()) if within.notna().any() else None,
    })


@warehouse_asset(
    group_name=GROUP, partitions_def=treatment_month_partitions, backfill_policy=monthly_statistics_backfill_policy,
    deps=["kuhr_treatment_months", *GEOGRAPHY], kinds={"sql"}, automation_condition=EAGER,
    description="Per treatment month x current municipality (with county and national rows) x tjeneste x "
    "kontakttype x kjonn x age group: contacts, distinct patients, regninger, egenandel and refusjon; zero-filled; "
    "credited regninger never count.",
)
def kuhr_contacts_monthly(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    w, months = warehouse.get(), partition_months(context)
    policy = split_policy_of(w)
    cells = kuhr_contacts.compute_monthly(w, months, policy)
    national = _national(w, "kuhr_contacts_monthly", "kjonn = 'T' AND age_group = 'T' AND treatment_month "
                         "BETWEEN :a AND :b", "SUM(contacts) AS contacts, SUM(regninger) AS regninger",
                         a=months[0], b=months[-1])
    return dg.MaterializeResult(metadata={"months": len(months), "cells": cells, "split_policy": policy,
                                          "national_contacts": national.get("contacts"),
                                          "national_regninger": national.get("regninger")})


@warehouse_asset(
    group_name=GROUP, partitions_def=treatment_year_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[dg.AssetDep("kuhr_treatment_months", partition_mapping=MONTHS_OF_YEAR), "population_denominators",
          *GEOGRAPHY],
    kinds={"sql"}, automation_condition=EAGER,
    description="Per year x current municipality x tjeneste x kjonn x age group: contacts, consultations, "
    "distinct patients, population, contacts per inhabitant and the share with a contact; preliminary until "
    "1 August of the next year.",
)
def kuhr_contacts_annual(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    w, years = warehouse.get(), partition_years(context)
    policy = split_policy_of(w)
    cells = kuhr_contacts.compute_annual(w, years, policy)
    gp = _national(w, "kuhr_contacts_annual", "tjeneste = 'FASTLEGE' AND kjonn = 'T' AND age_group = 'T' "
                   "AND year = :y", "consultations_per_inhabitant, share_with_consultation", y=years[-1])
    return dg.MaterializeResult(metadata={
        "years": f"{years[0]}-{years[-1]}", "cells": cells, "split_policy": policy,
        "preliminary_from": kuhr_contacts.first_preliminary_year(dt.date.today()),
        f"national_gp_consultations_per_inhabitant_{years[-1]}": gp.get("consultations_per_inhabitant"),
        f"national_share_with_gp_consultation_{years[-1]}": gp.get("share_with_consultation")})


def _care_preliminary(w, years: list[int]) -> bool:
    """A reporting year is preliminary until completeness has found it final (care_reporting_years)."""
    final = w.query("SELECT reporting_year FROM care_reporting_years WHERE final AND reporting_year BETWEEN :a AND :b",
                    a=years[0], b=years[-1])
    return len(final) < len(years)


@warehouse_asset(
    group_name=GROUP, partitions_def=reporting_year_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["care_reports", "care_completeness", "population_denominators", *GEOGRAPHY], 
    kinds={"sql"}, automation_condition=EAGER,
    description="care_users_annual from KPR (2017 on): per year x current municipality (reporting municipality) "
    "x service group and service x age group x kjonn: users during the year and on 31 December, per 1000 "
    "inhabitants (67+ and 80+ for home services and institutions), mean hours per week, days of stays.",
)
def care_users_annual(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    w, years = warehouse.get(), partition_years(context)
    policy, preliminary = split_policy_of(w), _care_preliminary(w, years)
    cells = care_users.compute_users(w, years, care_users.KPR, policy, preliminary)
    return dg.MaterializeResult(metadata={"years": f"{years[0]}-{years[-1]}", "cells": cells, "source": "KPR",
                                          "preliminary": preliminary, "split_policy": policy})


@warehouse_asset(
    group_name=GROUP, partitions_def=iplos_year_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["iplos_extracts", "population_denominators", *GEOGRAPHY], kinds={"sql"},
    automation_condition=EAGER,
    description="care_users_annual from IPLOS (2007-2016, and 2017 as the bridge row beside KPR's): the same "
    "cells as the KPR years, source IPLOS.",
)
def care_users_annual_iplos(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    w, years = warehouse.get(), partition_years(context)
    policy = split_policy_of(w)
    cells = care_users.compute_users(w, years, care_users.IPLOS, policy, preliminary=False)
    return dg.MaterializeResult(metadata={"years": f"{years[0]}-{years[-1]}", "cells": cells, "source": "IPLOS",
                                          "split_policy": policy})


@warehouse_asset(
    group_name=GROUP, partitions_def=reporting_year_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["care_reports", "care_completeness", dg.AssetDep("kuhr_treatment_months", partition_mapping=MONTHS_OF_YEAR),
          *GEOGRAPHY],
    kinds={"sql"}, automation_condition=EAGER,
    description="Per year x current municipality x service group: care users, those with a GP or emergency-room "
    "contact in the year, and GP and emergency-room contacts per user (the two KPR datasets linked by pid).",
)
def care_gp_contacts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    w, years = warehouse.get(), partition_years(context)
    policy, preliminary = split_policy_of(w), _care_preliminary(w, years)
    cells = care_users.compute_gp_contacts(w, years, policy, preliminary)
    return dg.MaterializeResult(metadata={"years": f"{years[0]}-{years[-1]}", "cells": cells,
                                          "preliminary": preliminary, "split_policy": policy})


class PublicationConfig(dg.Config):
    """``through_month`` (YYYY-MM): the newest treatment month to publish; by default the month that ended
    30 days or more before the run (as Helsedirektoratet publishes)."""

    through_month: str = ""


STATISTICS = ["kuhr_contacts_monthly", "kuhr_contacts_annual", "kuhr_delivery_completeness", "care_users_annual",
              "care_users_annual_iplos", "care_gp_contacts", "reconciliation_2017"]


@warehouse_asset(
    group_name=GROUP, deps=STATISTICS, kinds={"csv"},
    description="The published statistics after disclosure control: one CSV (UTF-8, ';') and one JSON metadata "
    "file per table under KPR_OUTPUT_DIR/publication/.",
)
def statistics_publication(context: dg.AssetExecutionContext, config: PublicationConfig,
                           warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    w = warehouse.get()
    through = (dt.date.fromisoformat(config.through_month + "-01") if config.through_month
               else publication.through_month_for(dt.date.today()))
    written = publication.publish(w, settings.output_dir, settings.suppression_threshold, split_policy_of(w),
                                  through, echo=context.log.info)
    directory = publication.publication_dir(settings.output_dir)
    summary = "\n".join(f"| {m['table']} | {m['rows']} | {m['cells_suppressed_primary']} | "
                        f"{m['cells_suppressed_complementary']} |" for m in written)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(directory.resolve())), "through_treatment_month": through.isoformat(),
        "suppression_threshold": settings.suppression_threshold,
        "summary": dg.MetadataValue.md("| table | rows | primary | complementary |\n|---|---|---|---|\n" + summary),
        "cells_suppressed": sum(m["cells_suppressed_primary"] + m["cells_suppressed_complementary"] for m in written),
    })


statistics_assets = [kuhr_delivery_completeness, kuhr_contacts_monthly, kuhr_contacts_annual, care_users_annual,
                     care_users_annual_iplos, care_gp_contacts, statistics_publication]
