"""KPR-helse og omsorg reports into the warehouse, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kpr_pipeline.ingest.care import process_report, report_files
from kpr_pipeline.quality.completeness import accept_gap, evaluate
from kpr_pipeline_tests.care_helpers import Person, Report, Service, make_identity, when

KEY = "test-key"
IPLOS_KEY = "iplos-synthetic-test-key-0001"
CARE_TABLES = ("care_submissions", "care_services", "care_rejected_rows", "care_warnings", "care_function_assessments")


def process_all(warehouse, landing: Path) -> list:
    return [process_report(warehouse, landing, p, False, KEY, IPLOS_KEY) for p in report_files(landing)]


def _idx(value):
    return None if value is None or value != value else int(value)


def test_every_planted_fault_is_caught_with_its_reason(warehouse, care_landing):
    process_all(warehouse, care_landing)
    truth = [json.loads(line) for line in (care_landing / "ground_truth.jsonl").read_text().splitlines()]
    truth = [t for t in truth if t["dataset"] == "helse_omsorg"]
    assert {t["defect"] for t in truth} >= {"not_well_formed", "schema_invalid", "xxe", "billion_laughs",
                                           "header_mismatch", "antall_mismatch", "recoded_12", "overlapping_stays",
                                           "died_before_year", "bad_check_digits", "id_type_mismatch"}
    name = lambda t: t["file"].rsplit("/", 1)[-1]  # noqa: E731
    expected_rejects = {(name(t), t["person_index"], t["service_index"], t["reason"])
                        for t in truth if t["level"] != "file" and t["expected"] == "reject"}
    expected_warnings = {(name(t), t["person_index"], t["service_index"], t["reason"])
                         for t in truth if t["expected"] == "warning"}
    expected_quarantine = {(t["file"].replace("helse_omsorg/", "helse_omsorg/"), t["reason"]) for t in truth
                           if t["level"] == "file"}
    rejected = warehouse.query("SELECT data_file, person_index, service_index, reasons FROM care_rejected_rows")
    found = {(r.data_file, r.person_index, _idx(r.service_index), code)
             for r in rejected.itertuples() for code in r.reasons.split(",")}
    assert found == expected_rejects  # every planted fault, and nothing else, is rejected
    warnings = warehouse.query("SELECT data_file, person_index, service_index, reason FROM care_warnings")
    found_w = {(r.data_file, r.person_index, _idx(r.service_index), r.reason) for r in warnings.itertuples()}
    assert expected_warnings <= found_w
    assert {w[3] for w in found_w - expected_warnings} <= {"bostedskommune_differs", "assessment_older_than_decision"}
    quarantined = warehouse.query("SELECT path, reason FROM quarantine_events")
    assert set(zip(quarantined["path"], quarantined["reason"])) == expected_quarantine
    for path, _ in expected_quarantine:
        assert (care_landing / "quarantine" / path).is_file() and not (care_landing / path).exists()
    # Every submission reconciles with what the warehouse holds.
    subs = warehouse.query("SELECT * FROM care_submissions WHERE status <> 'quarantined'")
    assert (subs["services"] == subs["services_loaded"] + subs["services_merged"] + subs["services_rejected"]
            + subs["services_person_rejected"]).all()
    assert int(subs["rows_rejected"].sum()) == len(rejected)
    current = subs[subs["status"] == "current"]
    assert int(current["services_loaded"].sum()) == warehouse.scalar("SELECT COUNT(*) FROM care_services")
    assert not current.duplicated(["reporting_year", "kommunenummer"]).any()
    # 12/13 recoded to 29 from 2019; the recoded row is loaded as 29.
    recoded = [t for t in truth if t["defect"] == "recoded_12"]
    for t in recoded:
        code = warehouse.scalar("SELECT tjenestekode FROM care_services WHERE data_file = :f AND person_index = :p "
                                "AND service_index = :s", f=name(t), p=t["person_index"], s=t["service_index"])
        assert code == 29


def test_processing_twice_changes_no_count(warehouse, care_landing):
    process_all(warehouse, care_landing)
    before = {t: warehouse.scalar(f"SELECT COUNT(*) FROM {t}") for t in CARE_TABLES}
    pids = warehouse.query("SELECT pid, tjenestekode, fra_dato FROM care_services ORDER BY 1, 2, 3")
    statuses = warehouse.query("SELECT data_file, status FROM care_submissions ORDER BY 1")
    # Quarantined files have moved away; the rest again, newest first (so every older one is superseded at once).
    results = [process_report(warehouse, care_landing, p, False, KEY, IPLOS_KEY)
               for p in reversed(report_files(care_landing))]
    assert all(r.status != "quarantined" for r in results)
    assert {t: warehouse.scalar(f"SELECT COUNT(*) FROM {t}") for t in CARE_TABLES} == before
    assert warehouse.query("SELECT pid, tjenestekode, fra_dato FROM care_services ORDER BY 1, 2, 3").equals(pids)
    assert warehouse.query("SELECT data_file, status FROM care_submissions ORDER BY 1").equals(statuses)


def _two_municipalities(landing: Path, tag: int = 0) -> tuple[Report, Report]:
    a = Report(2023, "0301", when(2024, 1, 8), [
        Person(make_identity(1 + tag), [Service(15, "2023-02-01", timer=4.5)]),
        Person(make_identity(2 + tag), [Service(6, "2022-05-01")])])
    b = Report(2023, "4601", when(2024, 1, 9), [
        Person(make_identity(3 + tag), [Service(21, "2021-01-01")], assessment="2023-01-01")])
    a.write(landing)
    b.write(landing)
    return a, b


def test_a_resubmission_replaces_exactly_one_municipality(warehouse, tmp_path):
    landing = tmp_path / "landing"
    a, b = _two_municipalities(landing)
    process_all(warehouse, landing)
    bergen_before = warehouse.query("SELECT * FROM care_services WHERE kommunenummer = '4601'")
    corrected = Report(2023, "0301", when(2024, 1, 20), [
        Person(make_identity(1), [Service(15, "2023-02-01", timer=6.0)]),
        Person(make_identity(9), [Service(1, "2023-03-01", timer=2.0)]),
        Person(make_identity(10), [Service(4, "2023-03-01")])])
    path = corrected.write(landing)
    result = process_report(warehouse, landing, path, False, KEY)
    assert result.status == "current" and result.late
    oslo = warehouse.query("SELECT tjenestekode, timer_per_uke, data_file FROM care_services "
                           "WHERE kommunenummer = '0301' ORDER BY tjenestekode")
    assert oslo["tjenestekode"].tolist() == [1, 4, 15] and set(oslo["data_file"]) == {corrected.name}
    assert oslo["timer_per_uke"].tolist()[2] == 6.0
    assert warehouse.query("SELECT * FROM care_services WHERE kommunenummer = '4601'").equals(bergen_before)
    statuses = dict(warehouse.query("SELECT data_file, status FROM care_submissions WHERE kommunenummer = '0301'")
                    .itertuples(index=False))
    assert statuses == {a.name: "superseded", corrected.name: "current"}
    # An older extract arriving late does not displace the newest one.
    older = Report(2023, "0301", when(2024, 1, 5), [Person(make_identity(30), [Service(4, "2023-01-01")])])
    assert process_report(warehouse, landing, older.write(landing), False, KEY).status == "superseded"
    assert warehouse.scalar("SELECT COUNT(*) FROM care_services WHERE kommunenummer = '0301'") == 3
    # The current file damaged and re-delivered: quarantined, and the newest earlier submission takes over.
    path.write_text("<kprHelseOmsorg", encoding="utf-8")
    assert process_report(warehouse, landing, path, False, KEY).status == "quarantined"
    assert set(warehouse.query("SELECT data_file FROM care_services WHERE kommunenummer = '0301'")["data_file"]) \
        == {a.name}
    assert warehouse.query("SELECT * FROM care_services WHERE kommunenummer = '4601'").equals(bergen_before)


def test_record_rules_on_a_hand_made_report(warehouse, tmp_path):
    landing = tmp_path / "landing"
    bad_check = make_identity(5)
    bad_check = bad_check[:10] + str((int(bad_check[10]) + 1) % 10)
    report = Report(2023, "0301", when(2024, 1, 15, 23, 59, 59), [
        Person(make_identity(1), [Service(15, "2023-02-01", timer=4.5), Service(15, "2023-03-01"),
                                  Service(6, "2023-01-01", timer=2.0), Service(15, "2023-01-01", timer=169),
                                  Service(99, "2023-01-01"), Service(12, "2020-01-01"),
                                  Service(4, "2023-06-01", til="2023-05-01"), Service(4, "2024-01-02"),
                                  Service(4, "1979-12-31"), Service(4, "2020-01-01", til="2022-12-31")]),
        Person(make_identity(2), [Service(21, "2023-02-01", til="2023-03-31"), Service(21, "2023-03-15"),
                                  Service(21, "2022-06-01", til="2023-01-31")], bosted="4601",
               assessment="2022-01-01"),
        Person(bad_check, [Service(4, "2023-01-01")]),
        Person(make_identity(3), [Service(4, "2023-01-01")], id_type="DNR"),
        Person(make_identity(4), [Service(4, "2022-01-01")], dodsdato="2022-12-31"),
    ], encoding="ISO-8859-1", fagsystem="Omsorg Tromsø")
    result = process_report(warehouse, landing, report.write(landing), False, KEY)
    assert result.status == "current" and result.late is False  # 23:59:59 on 15 January is on time
    rejected = warehouse.query("SELECT person_index, service_index, reasons FROM care_rejected_rows "
                               "ORDER BY person_index, service_index")
    got = {(r.person_index, _idx(r.service_index)): r.reasons for r in rejected.itertuples()}
    assert got == {
        (1, 2): "timer_missing", (1, 3): "timer_not_expected", (1, 4): "timer_out_of_range",
        (1, 5): "unknown_tjenestekode", (1, 7): "fra_after_til", (1, 8): "fra_after_year_end",
        (1, 9): "fra_too_early", (1, 10): "til_before_year_start",
        (3, None): "invalid_check_digits", (4, None): "pasient_id_type_mismatch", (5, None): "died_before_year",
    }
    assert warehouse.scalar("SELECT tjenestekode FROM care_services WHERE person_index = 1 AND service_index = 6") == 29
    stays = warehouse.query("SELECT fra_dato, til_dato FROM care_services WHERE person_index = 2 ORDER BY fra_dato")
    assert [str(d)[:10] for d in stays["fra_dato"]] == ["2022-06-01", "2023-02-01"]  # the two overlapping merged
    assert stays["til_dato"].isna().tolist() == [False, True]  # open-ended wins
    warnings = set(warehouse.query("SELECT person_index, service_index, reason FROM care_warnings")
                   .itertuples(index=False, name=None))
    assert {(1, 6, "tjenestekode_recoded"), (2, 2, "overlapping_long_term_stays")} <= {
        (p, _idx(s), r) for p, s, r in warnings}
    assert {(p, r) for p, s, r in warnings if s != s or s is None} == {
        (2, "bostedskommune_differs"), (2, "assessment_older_than_decision")}
    sub = warehouse.query("SELECT * FROM care_submissions").iloc[0]
    assert (sub["persons"], sub["services"], sub["rows_rejected"], sub["fagsystem"]) == (5, 16, 11, "Omsorg Tromsø")
    assert sub["services_merged"] == 1 and sub["services_person_rejected"] == 3
    # No identifier anywhere: the rejected person's record carries the pid.
    text = " ".join(warehouse.query("SELECT record, message FROM care_rejected_rows").astype(str).sum())
    assert bad_check not in text and make_identity(3) not in text


def test_2017_persons_get_the_iplos_linkage_pseudonym_and_assessments_are_loaded(warehouse, tmp_path):
    from kpr_pipeline.domain.pseudonyms import pseudonym

    landing = tmp_path / "landing"
    ident = make_identity(7)
    person = Person(ident, [Service(4, "2017-03-01")], assessment="2017-04-01")
    first = Report(2017, "0301", when(2018, 1, 8), [person]).write(landing)
    process_report(warehouse, landing, first, False, KEY, IPLOS_KEY)
    second = Report(2018, "0301", when(2019, 1, 8), [person]).write(landing)
    process_report(warehouse, landing, second, False, KEY, IPLOS_KEY)
    rows = warehouse.query("SELECT reporting_year, pid, iplos_pseudonym FROM care_services ORDER BY reporting_year")
    assert rows["pid"].tolist() == [pseudonym(ident, KEY)] * 2  # one person, one pid across years
    assert rows["iplos_pseudonym"].tolist()[0] == pseudonym(ident, IPLOS_KEY)
    assert rows["iplos_pseudonym"].isna().tolist() == [False, True]  # only 2017 is linked to IPLOS
    assessment = warehouse.query("SELECT * FROM care_function_assessments WHERE reporting_year = 2017").iloc[0]
    assert str(assessment["dato"])[:10] == "2017-04-01" and assessment["pid"] == pseudonym(ident, KEY)
    assert (assessment["hukommelse"], assessment["spise"]) == (3, 1) and assessment[["syn", "horsel"]].isna().all()
    third = Report(2017, "0301", when(2018, 1, 9), [person]).write(landing)
    process_report(warehouse, landing, third, False, KEY, None)  # no IPLOS key: no linkage, no failure
    assert warehouse.query("SELECT iplos_pseudonym FROM care_services WHERE reporting_year = 2017")[
        "iplos_pseudonym"].isna().all()


def test_production_rejects_test_identities(warehouse, tmp_path):
    landing = tmp_path / "landing"
    path = Report(2023, "0301", when(2024, 1, 8), [Person(make_identity(1), [Service(4, "2023-01-01")])]).write(landing)
    result = process_report(warehouse, landing, path, True, KEY)
    assert result.reasons == {"test_identity_in_production": 1}
    assert warehouse.scalar("SELECT COUNT(*) FROM care_services") == 0


@pytest.mark.parametrize("prolog, reason", [
    ('<!DOCTYPE kprHelseOmsorg [<!ENTITY xxe SYSTEM "file://{secret}">]>\n', "xml_doctype"),
    ('<!DOCTYPE kprHelseOmsorg SYSTEM "http://127.0.0.1:9/evil.dtd">\n', "xml_doctype"),
    ("<!DOCTYPE kprHelseOmsorg>\n", "xml_doctype"),
    ('<!-- a comment --><!DOCTYPE kprHelseOmsorg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
     '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>\n', "xml_doctype"),
])
def test_dtds_and_entities_are_refused_quickly_without_reading_anything(warehouse, tmp_path, prolog, reason):
    landing = tmp_path / "landing"
    secret = tmp_path / "secret.txt"
    secret.write_text("CANARY-SECRET", encoding="utf-8")
    report = Report(2023, "0301", when(2024, 1, 8), [Person(make_identity(1), [Service(4, "2023-01-01")])],
                    prolog=prolog.format(secret=secret), fagsystem="&xxe;" if "xxe" in prolog else "Gerica")
    started = time.perf_counter()
    result = process_report(warehouse, landing, report.write(landing), False, KEY)
    assert time.perf_counter() - started < 5
    assert (result.status, result.reason) == ("quarantined", reason)
    stored = json.dumps(warehouse.query("SELECT * FROM care_submissions").astype(str).to_dict())
    reason_file = next((landing / "quarantine").rglob("*.reason.json")).read_text(encoding="utf-8")
    assert "CANARY" not in stored and "CANARY" not in reason_file


@pytest.mark.parametrize("damage, reason", [
    (lambda r: setattr(r, "antall", 2), "antall_brukere_mismatch"),
    (lambda r: setattr(r, "prolog", "<ukjent/>"), "xml_not_well_formed"),
    (lambda r: setattr(r, "encoding", "UTF-16"), "encoding_error"),
    (lambda r: r.persons[0].services.append(Service(4, "2023-02-30")), "xml_schema_invalid"),
    (lambda r: setattr(r.persons[0], "extra", "<ukjent/>"), "xml_schema_invalid"),
    (lambda r: setattr(r.persons[0], "ident", "１２３４５６７８９０１"), "xml_schema_invalid"),
    (lambda r: setattr(r.persons[0], "services", [Service(4, "2023-01-01", timer=float("nan"))]), "xml_schema_invalid"),
])
def test_damaged_files_are_quarantined_with_their_reason(warehouse, tmp_path, damage, reason):
    landing = tmp_path / "landing"
    report = Report(2023, "0301", when(2024, 1, 8), [Person(make_identity(1), [Service(4, "2023-01-01")])])
    damage(report)
    path = report.write(landing)
    result = process_report(warehouse, landing, path, False, KEY)
    assert (result.status, result.reason) == ("quarantined", reason)
    assert (landing / "quarantine" / "helse_omsorg" / "2023" / path.name).is_file()
    event = warehouse.query("SELECT reason, sha256 FROM quarantine_events").iloc[0]
    assert event["reason"] == reason and len(event["sha256"]) == 64


def test_file_name_and_header_must_agree(warehouse, tmp_path):
    landing = tmp_path / "landing"
    good = Report(2023, "0301", when(2024, 1, 8), [Person(make_identity(1), [Service(4, "2023-01-01")])])
    wrong_stamp = good.write(landing).rename(landing / "helse_omsorg" / "2023" / "kpr_ho_2023_0301_20240108T093001.xml")
    assert process_report(warehouse, landing, wrong_stamp, False, KEY).reason == "header_file_name_mismatch"
    odd_name = Report(2023, "0301", when(2024, 1, 9), []).write(landing)
    odd = odd_name.rename(odd_name.with_name("report.xml"))
    assert process_report(warehouse, landing, odd, False, KEY).reason == "file_name_invalid"
    retired = Report(2023, "0101", when(2024, 1, 8), [])  # Halden's pre-2020 code
    assert process_report(warehouse, landing, retired.write(landing), False, KEY).reason == \
        "municipality_not_valid_in_year"


def test_completeness_deadline_and_accepted_gaps(warehouse, tmp_path):
    import datetime as dt

    landing = tmp_path / "landing"
    _two_municipalities(landing)
    Report(2023, "5001", when(2024, 2, 1), [Person(make_identity(20), [Service(4, "2023-01-01")]),
                                            Person(make_identity(1), [Service(6, "2023-01-01")])]).write(landing)
    process_all(warehouse, landing)
    before = evaluate(warehouse, 2023, dt.datetime(2024, 1, 10, tzinfo=dt.timezone.utc))
    assert not before.deadline_passed and not before.final
    assert before.persons_in_two_municipalities == 1  # Oslo and Trondheim both report the same person
    assert {"0301", "4601", "5001"}.isdisjoint(before.missing) and len(before.missing) == before.expected - 3
    grid = warehouse.query("SELECT kommunenummer, status FROM care_completeness WHERE kommunenummer IN "
                           "('0301', '4601', '5001', '1103')")
    assert dict(grid.itertuples(index=False)) == {"0301": "on_time", "4601": "on_time", "5001": "late",
                                                  "1103": "missing"}
    after = evaluate(warehouse, 2023, dt.datetime(2024, 1, 16, tzinfo=dt.timezone.utc))
    assert after.deadline_passed and not after.final
    for code in after.missing:
        accept_gap(warehouse, 2023, code, "steward", "agreed with the municipality")
    final = evaluate(warehouse, 2023, dt.datetime(2024, 1, 16, tzinfo=dt.timezone.utc))
    assert final.final and final.missing == [] and len(final.accepted_gaps) == before.expected - 3
    assert warehouse.scalar("SELECT final FROM care_reporting_years WHERE reporting_year = 2023") in (True, 1)
    with pytest.raises(ValueError, match="not an expected reporter"):
        accept_gap(warehouse, 2023, "0101", "steward", "retired code")
