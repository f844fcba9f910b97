"""Asset checks built from data contracts: Great Expectations results as ``AssetCheckResult``."""

from __future__ import annotations

import dagster as dg

from kpr_pipeline.defs.resources import WarehouseResource
from kpr_pipeline.quality.contracts import load_contract


def contract_check(asset: dg.AssetsDefinition | str, contract_name: str) -> dg.AssetChecksDefinition:
    """A check that validates the asset's table against ``data_contracts/<contract_name>.yaml``.

    ERROR contracts are blocking: a failure stops downstream assets in the same run.
    """
    contract = load_contract(contract_name)
    blocking = contract.severity == "ERROR"

    @dg.asset_check(
        asset=asset,
        name=f"contract_{contract_name}",
        description=f"Data contract {contract_name}: {contract.description}",
        blocking=blocking,
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        from kpr_pipeline.quality.gx import validate_frame

        frame = warehouse.get().query(f'SELECT * FROM "{contract.table}"')
        outcome = validate_frame(frame, contract)
        return dg.AssetCheckResult(
            passed=outcome.success,
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            metadata=outcome.metadata(),
        )

    return _check
