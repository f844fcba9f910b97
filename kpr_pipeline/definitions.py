"""The code location: merges each domain's definitions and adds the shared resources.

Settings are read and validated here, once per process, so a wrong setting stops the code
location from loading with one sentence naming it. A deployment's runs execute their steps in one
process (``in_process_executor``): every step is SQL in the warehouse, serialised by the warehouse
pool anyway, and a process per step would pay the imports (GX alone ~5 s) once per check.
"""

from __future__ import annotations

import dagster as dg

from kpr_pipeline.defs.care import definitions as care
from kpr_pipeline.defs.care.schedules import care_schedules
from kpr_pipeline.defs.catch_up import catch_up_schedules
from kpr_pipeline.defs.iplos import definitions as iplos
from kpr_pipeline.defs.kuhr import definitions as kuhr
from kpr_pipeline.defs.kuhr.schedules import kuhr_schedules
from kpr_pipeline.defs.quality import definitions as quality
from kpr_pipeline.defs.reference import definitions as reference
from kpr_pipeline.defs.statistics import definitions as statistics
from kpr_pipeline.defs.statistics.schedules import statistics_schedules
from kpr_pipeline.defs.resources import resources_for
from kpr_pipeline.settings import Settings, get_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or get_settings()
    return dg.Definitions.merge(
        reference.defs, kuhr.defs, care.defs, iplos.defs, statistics.defs, quality.defs,
        dg.Definitions(schedules=[*care_schedules(settings.production), *catch_up_schedules(settings.production),
                                  *kuhr_schedules(settings.production),
                                  *statistics_schedules(settings.production)],
                       resources=resources_for(settings), executor=dg.in_process_executor))


defs = build_definitions()
