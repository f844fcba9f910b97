"""Asset checks built from data contracts: Great Expectations results as ``AssetCheckResult``."""


from typing import Callable

import dagster as dg

from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.quality.contracts import load_contract
from kpr_pipeline.settings import get_settings


def contract_check(asset: dg.AssetsDefinition | str, contract_name: str,
                   rows_sql: Callable[[dg.AssetCheckExecutionContext], tuple[str, dict]] | None = None,
                   ) -> dg.AssetChecksDefinition:
    """A check that validates the asset's table against ``data_contracts/<contract_name>.yaml``.

    ``rows_sql`` chooses the rows (for a partitioned asset: those the run wrote); by default the
    whole table. ERROR contracts are blocking: a failure stops downstream assets in the same run.
    """
    contract = load_contract(contract_name)
    blocking = contract.severity == "ERROR"

    @dg.asset_check(
        asset=asset,
        name=f"contract_{contract_name}",
        description=f"Data contract {contract_name}: {contract.description}",
        blocking=blocking,
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        from kpr_pipeline.quality import data_docs
        from kpr_pipeline.quality.gx import validate_frame

        sql, params = rows_sql(context) if rows_sql else (f'SELECT * FROM "{contract.table}"', {})
        frame = warehouse.get().query(sql, **params)
        outcome = validate_frame(frame, contract)
        data_docs.save_result(get_settings().output_dir, contract.name, outcome.result_json)
        return dg.AssetCheckResult(
            passed=outcome.success,
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            metadata=outcome.metadata(),
        )

    return _check
