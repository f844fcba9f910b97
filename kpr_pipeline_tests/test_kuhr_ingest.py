"""KUHR ingestion against the generator's ground truth, on both warehouses."""

import datetime as dt
import json

import pandas as pd
import pytest

from kpr_pipeline.ingest.kuhr import process_delivery, ready_manifests
from kpr_pipeline.synth.defects import KUHR_FILE_DEFECTS, KUHR_ROW_DEFECTS
from kpr_pipeline_tests.kuhr_helpers import write_delivery

KEY = "test-key"
COUNTED_TABLES = ["kuhr_deliveries", "kuhr_claims", "kuhr_claim_takster", "kuhr_claim_diagnoser", "kuhr_warnings",
                  "kuhr_rejected_rows"]


def _truth(landing):
    return [json.loads(x) for x in (landing / "ground_truth.jsonl").read_text().splitlines()
            if json.loads(x)["dataset"] == "kuhr"]


def _process_all(warehouse, landing):
    return [process_delivery(warehouse, landing, m, False, KEY) for m in ready_manifests(landing)]


def _snapshot(warehouse):
    counts = {t: int(warehouse.scalar(f"SELECT COUNT(*) FROM {t}")) for t in COUNTED_TABLES}
    counts["credited"] = int(warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE credited"))
    counts["doubles"] = int(warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE suspected_double"))
    counts["late"] = int(warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE late"))
    return counts


def test_every_injected_fault_is_caught_and_every_row_accounted_for(warehouse, kuhr_landing):
    truth = _truth(kuhr_landing)
    assert {t["defect"] for t in truth} >= set(KUHR_ROW_DEFECTS) | set(KUHR_FILE_DEFECTS)  # the sample has them all
    results = _process_all(warehouse, kuhr_landing)

    rejected = warehouse.query("SELECT delivery_id, row_number, reasons FROM kuhr_rejected_rows")
    got = {(r.delivery_id, int(r.row_number)): set(r.reasons.split(",")) for r in rejected.itertuples()}
    expected_rejects = {(t["delivery_id"], t["row_number"]): t["reason"] for t in truth
                        if t["level"] == "row" and t["expected"] == "reject"}
    missing = {k: v for k, v in expected_rejects.items() if v not in got.get(k, set())}
    assert not missing, list(missing.items())[:5]
    assert set(got) == set(expected_rejects)  # nothing rejected that was not injected

    warnings = warehouse.query("SELECT delivery_id, row_number, reason FROM kuhr_warnings")
    got_warn = {(w.delivery_id, int(w.row_number), w.reason) for w in warnings.itertuples()}
    expected_warn = {(t["delivery_id"], t["row_number"], t["reason"]) for t in truth
                     if t["level"] == "row" and t["expected"] == "warning"}
    assert expected_warn <= got_warn

    deliveries = warehouse.query("SELECT * FROM kuhr_deliveries")
    status = dict(zip(deliveries.delivery_id, deliveries.status))
    reason = dict(zip(deliveries.delivery_id, deliveries.reason))
    for t in [t for t in truth if t["level"] == "file"]:
        if t["expected"] == "not_ready":
            assert t["delivery_id"] not in status
            assert (kuhr_landing / t["file"]).exists()  # left alone, still being written
        else:
            assert status[t["delivery_id"]] == "quarantined" and reason[t["delivery_id"]] == t["reason"], t
            assert (kuhr_landing / "quarantine" / t["file"]).exists(), t
            assert not (kuhr_landing / t["file"]).exists()
    assert int(warehouse.scalar("SELECT COUNT(*) FROM quarantine_events")) == sum(
        1 for t in truth if t["level"] == "file" and t["expected"] == "quarantine")

    loaded = deliveries[deliveries.status == "loaded"]
    assert (loaded.rows_loaded + loaded.rows_rejected + loaded.rows_duplicate == loaded.rows_in_file).all()
    assert int(loaded.rows_duplicate.sum()) > 0  # the generator re-sends some claims
    assert sum(r.rows_loaded for r in results) == int(warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims"))
    # Credits annul their originals; suspected doubles come in pairs or more.
    assert int(warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE credited")) == int(
        warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE kreditering"))
    assert int(warehouse.scalar("SELECT COUNT(*) FROM kuhr_claims WHERE suspected_double")) != 1  # (detection: below)


def test_reprocessing_changes_no_count(warehouse, kuhr_landing):
    _process_all(warehouse, kuhr_landing)
    first = _snapshot(warehouse)
    _process_all(warehouse, kuhr_landing)  # everything still in the landing zone, processed again explicitly
    assert _snapshot(warehouse) == first


def test_no_raw_identifier_is_stored(warehouse, kuhr_landing):
    from kpr_pipeline.domain.identifiers import check_identifiers

    _process_all(warehouse, kuhr_landing)
    ids = set()
    for p in (kuhr_landing / "kuhr").glob("*.csv.gz"):
        try:
            ids |= set(pd.read_csv(p, sep=";", dtype=str, keep_default_na=False)["pasient_id"])
        except Exception:  # noqa: BLE001 - damaged files
            pass
    assert len(ids) > 100
    for table in COUNTED_TABLES:
        text = warehouse.query(f"SELECT * FROM {table}").astype(str).to_csv()
        assert not any(i in text for i in ids), table
    pids = warehouse.query("SELECT pid FROM kuhr_claims")["pid"]
    assert pids.str.fullmatch(r"[0-9a-f]{64}").all()
    well_formed = pd.Series(sorted(i for i in ids if len(i) == 11))
    assert check_identifiers(well_formed).test_identity.all()  # the generator never writes a real-form identifier


def _claim_rows(kuhr_landing, n=3):
    """Real generated claims to build hand-made deliveries from."""
    path = sorted((kuhr_landing / "kuhr").glob("*.csv.gz"))[3]
    rows = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    rows = rows[(rows.kreditering == "0") & (rows.tjeneste == "FASTLEGE")].head(n).reset_index(drop=True)
    assert len(rows) == n
    return rows


def test_a_credit_note_annuls_its_original_and_touches_its_old_month(warehouse, kuhr_landing, tmp_path):
    landing = tmp_path / "hand"
    rows = _claim_rows(kuhr_landing, 2)
    original_month = pd.Timestamp(rows.loc[0, "tidspunkt"][:7] + "-01").date()
    write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1), rows.assign(mottatt_dato="2017-03-01"))
    note = rows.iloc[[0]].copy()
    note["regning_id"] = "credit-0001"
    note["kreditering"] = "1"
    note["kreditert_regning_id"] = rows.loc[0, "regning_id"]
    note["egenandel"] = "-" + note["egenandel"]
    note["refusjon"] = "-" + note["refusjon"]
    note["mottatt_dato"] = "2021-06-01"
    second = note.copy()
    second["regning_id"] = "credit-0002"  # a second credit of the same original
    orphan = note.copy()
    orphan["regning_id"] = "credit-0003"
    orphan["kreditert_regning_id"] = "never-delivered"
    write_delivery(landing, "kuhr_20210601_001", dt.date(2021, 6, 1), pd.concat([orphan, second, note]))
    a, b = _process_all(warehouse, landing)
    assert a.rows_loaded == 2 and b.rows_loaded == 1 and b.rows_rejected == 2
    assert original_month in b.months  # the 2017 month must be recomputed after a 2021 delivery
    claims = warehouse.query("SELECT regning_id, credited, kreditering FROM kuhr_claims ORDER BY regning_id")
    assert dict(zip(claims.regning_id, claims.credited))[rows.loc[0, "regning_id"]]
    assert not dict(zip(claims.regning_id, claims.credited))[rows.loc[1, "regning_id"]]
    reasons = warehouse.query("SELECT row_number, reasons FROM kuhr_rejected_rows ORDER BY row_number")
    assert dict(zip(reasons.row_number, reasons.reasons)) == {1: "orphan_credit", 2: "duplicate_credit"} or dict(
        zip(reasons.row_number, reasons.reasons)) == {1: "orphan_credit", 3: "duplicate_credit"}
    months = warehouse.query("SELECT treatment_month FROM kuhr_touched_months WHERE delivery_id = 'kuhr_20210601_001'")
    assert original_month in {pd.Timestamp(m).date() for m in months.treatment_month}


def test_resend_and_suspected_double(warehouse, kuhr_landing, tmp_path):
    landing = tmp_path / "hand"
    rows = _claim_rows(kuhr_landing, 2)
    twin = rows.iloc[[0]].assign(regning_id="twin-0001")
    write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1),
                   pd.concat([rows, rows.iloc[[1]], twin]).assign(mottatt_dato="2017-03-01"))
    write_delivery(landing, "kuhr_20170302_001", dt.date(2017, 3, 2), rows.assign(mottatt_dato="2017-03-01"))
    # a twin of the second claim under a new regning_id, a day later: a suspected double across deliveries
    write_delivery(landing, "kuhr_20170303_001", dt.date(2017, 3, 3),
                   rows.iloc[[1]].assign(regning_id="twin-0002", mottatt_dato="2017-03-01"))
    a, b, c = _process_all(warehouse, landing)
    assert (a.rows_loaded, a.rows_duplicate, b.rows_loaded, b.rows_duplicate) == (3, 1, 0, 2)
    assert (c.rows_loaded, c.rows_duplicate) == (1, 0)
    doubles = warehouse.query("SELECT regning_id FROM kuhr_claims WHERE suspected_double ORDER BY regning_id")
    assert set(doubles.regning_id) == {rows.loc[0, "regning_id"], "twin-0001", rows.loc[1, "regning_id"], "twin-0002"}


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(p.read_bytes()[:-30]), "checksum_mismatch"),
])
def test_quarantine_moves_files_and_records_the_reason(warehouse, kuhr_landing, tmp_path, damage, reason):
    landing = tmp_path / "hand"
    path = write_delivery(landing, "kuhr_20170301_001", dt.date(2017, 3, 1), _claim_rows(kuhr_landing, 1))
    damage(path)
    (result,) = _process_all(warehouse, landing)
    assert result.status == "quarantined" and result.reason == reason
    info = json.loads((landing / "quarantine/kuhr/kuhr_20170301_001.csv.gz.reason.json").read_text())
    assert info["reason"] == reason and len(info["sha256"]) == 64
    assert (landing / "quarantine/kuhr/kuhr_20170301_001.manifest.json").exists()
    assert not list((landing / "kuhr").iterdir())
