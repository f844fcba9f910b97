"""The code location: merges each domain's definitions and adds the shared resources.

Settings are read and validated here, once per process, so a wrong setting stops the code
location from loading with one sentence naming it.
"""

from __future__ import annotations

import dagster as dg

from kpr_pipeline.defs.kuhr.definitions import defs as kuhr_defs
from kpr_pipeline.defs.reference.definitions import defs as reference_defs
from kpr_pipeline.defs.resources import resources_for
from kpr_pipeline.settings import Settings, get_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or get_settings()
    return dg.Definitions.merge(reference_defs, kuhr_defs, dg.Definitions(resources=resources_for(settings)))


defs = build_definitions()
