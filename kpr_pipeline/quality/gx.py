"""The thin glue from a data contract to a Great Expectations 1.x validation.

An ephemeral context per validation; the expectation suite is built from the contract; results
are reduced to counts. ``partial_unexpected_count`` is 0 and no unexpected values are returned,
so no identifier or pseudonym can leak into check metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from kpr_pipeline.quality.contracts import Contract

_NUMERIC = {"integer", "number"}


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None


@dataclass(frozen=True)
class ValidationOutcome:
    contract: str
    rows: int
    outcomes: tuple[ExpectationOutcome, ...]
    #: Great Expectations' own result document, for Data Docs (``data_docs.save_result``); no values in it
    result_json: dict | None = None

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def metadata(self) -> dict:
        """Counts only: which expectations failed and how many rows broke each."""
        return {
            "contract": self.contract,
            "rows_validated": self.rows,
            "expectations": len(self.outcomes),
            "expectations_failed": len(self.failed),
            "failures": [
                f"{o.expectation}({o.column or ''}): {o.unexpected_count if o.unexpected_count is not None else 'failed'}"
                for o in self.failed
            ],
        }


def _expectations(gx, contract: Contract) -> list:
    e = gx.expectations
    out = [e.ExpectTableColumnsToMatchSet(column_set=contract.column_names, exact_match=False)]
    for c in contract.columns:
        out.append(e.ExpectColumnToExist(column=c.name))
        if c.required:
            out.append(e.ExpectColumnValuesToNotBeNull(column=c.name))
        if c.pattern:
            out.append(e.ExpectColumnValuesToMatchRegex(column=c.name, regex=c.pattern))
        if c.allowed is not None:
            out.append(e.ExpectColumnValuesToBeInSet(column=c.name, value_set=list(c.allowed)))
        if c.min is not None or c.max is not None:
            out.append(e.ExpectColumnValuesToBeBetween(column=c.name, min_value=c.min, max_value=c.max))
        if c.unique:
            out.append(e.ExpectColumnValuesToBeUnique(column=c.name))
    for rule in contract.rules:
        kind = rule["expectation"]
        cls = getattr(e, "".join(part.capitalize() for part in kind.split("_")))
        out.append(cls(**rule.get("kwargs", {})))
    return out


def validate_frame(frame: pd.DataFrame, contract: Contract) -> ValidationOutcome:
    """Validate ``frame`` against ``contract`` with Great Expectations (imported here: it costs seconds)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    source = context.data_sources.add_pandas(f"kpr_{contract.name}")
    asset = source.add_dataframe_asset(name=contract.table)
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=f"contract_{contract.name}"))
    for expectation in _expectations(gx, contract):
        suite.add_expectation(expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": _typed(frame, contract)})
    result = batch.validate(suite, result_format={"result_format": "BASIC", "partial_unexpected_count": 0})
    outcomes = tuple(
        ExpectationOutcome(
            expectation=r.expectation_config.type,
            column=r.expectation_config.kwargs.get("column"),
            success=bool(r.success),
            unexpected_count=r.result.get("unexpected_count"),
        )
        for r in result.results
    )
    return ValidationOutcome(contract=contract.name, rows=len(frame), outcomes=outcomes,
                             result_json=result.to_json_dict())


def _typed(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Numbers compared as numbers, text as text, whatever the warehouse driver returned."""
    frame = frame.copy()
    for c in contract.columns:
        if c.name not in frame.columns:
            continue
        if c.type in _NUMERIC:
            frame[c.name] = pd.to_numeric(frame[c.name], errors="coerce")
        elif c.type == "string":
            frame[c.name] = frame[c.name].astype("object").where(frame[c.name].notna(), None)
    return frame
