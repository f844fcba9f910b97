"""The synthetic landing zone: spec formats, determinism, test identities only, faults listed."""

import hashlib
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from kpr_pipeline.domain import identifiers as ids
from kpr_pipeline.domain.landing import read_manifest, sha256_file
from kpr_pipeline.domain.reference import XSD_PATH, municipality_codes_valid
from kpr_pipeline.synth.care import CARE_FILE_DEFECTS, CARE_RECORD_DEFECTS
from kpr_pipeline.synth.defects import KUHR_FILE_DEFECTS, KUHR_ROW_DEFECTS
from kpr_pipeline.synth.generator import GenerateOptions, generate
from kpr_pipeline.synth.iplos import COLUMNS as IPLOS_COLUMNS, IPLOS_ROW_DEFECTS
from kpr_pipeline.synth.kuhr import COLUMNS as KUHR_COLUMNS

NS = {"k": "urn:no:kpr:helse-omsorg:1"}


def _truth(landing: Path) -> list[dict]:
    return [json.loads(line) for line in (landing / "ground_truth.jsonl").read_text().splitlines()]


def _faulty_files(landing: Path) -> set[str]:
    return {t["file"] for t in _truth(landing) if t.get("level") == "file"}


def _read_kuhr(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


def test_same_seed_same_bytes(tmp_path):
    def digest(out):
        generate(GenerateOptions(out=out, seed=3, scale=0.0003, start="2017-11", end="2018-01", defects=0.02,
                                 progress=False))
        h = hashlib.sha256()
        for p in sorted(out.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(out).as_posix().encode() + p.read_bytes())
        return h.hexdigest()

    first = digest(tmp_path / "a")
    assert first == digest(tmp_path / "b")
    assert first == digest(tmp_path / "a")  # regenerating over itself gives the same bytes too


def test_kuhr_deliveries_follow_the_format(small_landing):
    faulty = _faulty_files(small_landing)
    manifests = sorted((small_landing / "kuhr").glob("*.manifest.json"))
    assert len(manifests) > 400
    rows = 0
    for m in manifests:
        data_file = m.name.replace(".manifest.json", ".csv.gz")
        if f"kuhr/{data_file}" in faulty:
            continue
        manifest = read_manifest(m, "kpr-kuhr-delivery")
        path = small_landing / "kuhr" / manifest.data_file
        assert manifest.sha256 == sha256_file(path)
        frame = _read_kuhr(path)
        assert list(frame.columns) == KUHR_COLUMNS
        assert len(frame) == manifest.row_count
        assert manifest.delivery_id == m.name[: -len(".manifest.json")]
        rows += len(frame)
    assert rows > 20_000


def test_every_identifier_is_a_valid_test_identity_unless_a_fault_says_otherwise(small_landing):
    damaged = {t["regning_id"] for t in _truth(small_landing) if t["dataset"] == "kuhr" and t.get("level") == "row"}
    faulty = _faulty_files(small_landing)
    frames = [_read_kuhr(p) for p in sorted((small_landing / "kuhr").glob("*.csv.gz"))
              if f"kuhr/{p.name}" not in faulty]
    claims = pd.concat(frames, ignore_index=True)
    claims = claims[~claims.regning_id.isin(damaged)]
    check = ids.check_identifiers(claims.pasient_id, claims.pasient_id_type, claims.tidspunkt.str[:10])
    assert check.valid.all()
    assert check.test_identity.all()  # never a real-form identifier
    assert (check.birth_year.astype(str) == claims.fodselsaar.to_numpy()).all()
    assert set(claims.tjeneste) == {"FASTLEGE", "LEGEVAKT", "FYSIOTERAPI", "KIROPRAKTOR", "TANNLEGE", "TANNPLEIER",
                                    "LOGOPED", "AUDIOPEDAGOG", "ORTOPTIST", "HELSESTASJON_JORDMOR"} or len(claims) < 50_000
    credits = claims[claims.kreditering == "1"]
    assert len(credits) > 0 and credits.kreditert_regning_id.isin(claims.regning_id).all()
    assert claims.regning_id.duplicated().any()  # resends


def test_municipal_reports_are_valid_against_the_xsd(small_landing):
    schema = etree.XMLSchema(etree.parse(str(XSD_PATH)))
    faulty = _faulty_files(small_landing)
    files = sorted((small_landing / "helse_omsorg").rglob("*.xml"))
    by_year = Counter(p.parent.name for p in files)
    assert set(by_year) == {"2017"}  # only complete reporting years in 2017-01..2018-02
    reporters = set(municipality_codes_valid(2017, reporters_only=True))
    seen = set()
    for path in files:
        rel = path.relative_to(small_landing).as_posix()
        if rel in faulty:
            continue
        doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
        assert schema.validate(doc), (rel, schema.error_log.last_error)
        header = doc.getroot().find("k:hode", NS)
        code = header.findtext("k:kommunenummer", namespaces=NS)
        stamp = header.findtext("k:uttrekkstidspunkt", namespaces=NS)
        assert path.name == f"kpr_ho_2017_{code}_{stamp[:19].replace('-', '').replace(':', '')}.xml"
        assert int(header.findtext("k:antallBrukere", namespaces=NS)) == len(doc.getroot().findall("k:bruker", NS))
        seen.add(code)
    missing = reporters - seen
    assert 0 < len(missing) < 20  # a few municipalities never report


def test_iplos_extracts(small_landing):
    faulty = _faulty_files(small_landing)
    for year in range(2007, 2018):
        manifest = read_manifest(small_landing / "iplos" / f"iplos_{year}.manifest.json", "iplos-extract")
        path = small_landing / "iplos" / manifest.data_file
        frame = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
        assert list(frame.columns) == IPLOS_COLUMNS
        if f"iplos/{path.name}" not in faulty:
            assert len(frame) == manifest.row_count and manifest.sha256 == sha256_file(path)
        assert manifest.delivery_id == f"iplos_{year}"
        assert not frame.pseudonym.str.fullmatch(r"\d{11}").any()


def test_ground_truth_lists_every_kind_of_fault(small_landing):
    truth = _truth(small_landing)
    kinds = {(t["dataset"], t["defect"]) for t in truth if "defect" in t}
    expected = {("kuhr", k) for k in KUHR_ROW_DEFECTS} | {("kuhr", k) for k in KUHR_FILE_DEFECTS}
    expected |= {("kuhr", "duplicate_credit")}
    expected |= {("helse_omsorg", k) for k in CARE_FILE_DEFECTS}
    expected |= {("helse_omsorg", k) for k in CARE_RECORD_DEFECTS if k != "recoded_12"}  # 12 is valid before 2019
    expected |= {("iplos", k) for k in IPLOS_ROW_DEFECTS} | {("iplos", "checksum_mismatch"), ("iplos", "row_count_mismatch")}
    assert expected <= kinds, sorted(expected - kinds)
    planted = Counter(t["kind"] for t in truth if t["dataset"] == "reconciliation_2017")
    assert set(planted) == {"only_kpr", "only_iplos", "start_shift", "hours_change"} or sum(planted.values()) > 0


def test_row_faults_point_at_the_damaged_row(small_landing):
    for t in [t for t in _truth(small_landing) if t["dataset"] == "kuhr" and t.get("level") == "row"][:50]:
        frame = _read_kuhr(small_landing / t["file"])
        assert frame.iloc[t["row_number"] - 1]["regning_id"] == t["regning_id"]


def test_gp_consultations_are_calibrated(tmp_path):
    """A year of claims gives about 3.0 GP consultations per inhabitant and 72 % with one (statistics.md)."""
    import datetime as dt

    from kpr_pipeline.domain.reference import takster
    from kpr_pipeline.synth.kuhr import KuhrGenerator
    from kpr_pipeline.synth.output import GroundTruth
    from kpr_pipeline.synth.population import build_population, to_ordinal

    pop = build_population(5, 0.001)
    gen = KuhrGenerator(pop, 5, tmp_path, GroundTruth(tmp_path), 0.0)
    frames, day = [], dt.date(2019, 1, 1)
    while day <= dt.date(2020, 10, 27):  # every claim of 2019, whenever it arrives
        claims = gen.claims_received(day)
        frames.append(claims.loc[(claims.tjeneste == "FASTLEGE") & (claims.tidspunkt.str[:4] == "2019"),
                                 ["pasient_id", "takster"]])
        day += dt.timedelta(days=1)
    claims = pd.concat(frames)
    t = takster()
    consultation = set(t[(t.tjeneste == "FASTLEGE") & (t.kontakttype == "konsultasjon")].takst)
    consultations = claims[claims.takster.str.split(":").str[0].isin(consultation)]
    mid_year = to_ordinal(dt.date(2019, 7, 1))
    inhabitants = int(((pop.arrival <= mid_year) & (pop.death >= mid_year)).sum())
    assert len(consultations) / inhabitants == pytest.approx(3.0, rel=0.05)
    assert consultations.pasient_id.nunique() / inhabitants == pytest.approx(0.72, rel=0.05)


def test_the_population_living_in_norway_follows_ssb_on_1_january():
    """Births, deaths and immigration keep the synthetic population at SSB's totals x scale, the
    denominators the statistics divide by (so rates per inhabitant are not biased)."""
    import datetime as dt

    from kpr_pipeline.domain import reference
    from kpr_pipeline.domain.population import parse_ssb_07459
    from kpr_pipeline.synth.population import build_population, to_ordinal

    scale = 0.01
    pop = build_population(3, scale)
    for year, name in ((2019, "Personer2019.csv"), (2022, "Personer2022.csv")):
        total = int(parse_ssb_07459(reference.REFERENCE_DIR / "ssb_07459" / name)["persons"].sum())
        jan1 = to_ordinal(dt.date(year, 1, 1))
        living = int(((pop.arrival <= jan1) & (pop.death > jan1)).sum())
        assert living / scale == pytest.approx(total, rel=0.01), year
    assert (pop.arrival >= pop.birth).all() and (pop.arrival > pop.birth).sum() > 0.02 * len(pop)
