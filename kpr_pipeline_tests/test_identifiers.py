"""The vectorised identifier check agrees with python-stdnum on every case it is given."""

import datetime as dt

import numpy as np
import pandas as pd
from stdnum.no import fodselsnummer

from kpr_pipeline.domain import identifiers as ids


def _random_numbers(n: int, seed: int) -> list[str]:
    """Random 11-digit strings, half of them given valid check digits, in every form."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        day = int(rng.integers(0, 80))
        month = int(rng.choice([rng.integers(0, 14), rng.integers(40, 54), rng.integers(80, 94), rng.integers(14, 99)]))
        nine = f"{day:02d}{month:02d}{int(rng.integers(0, 100)):02d}{int(rng.integers(0, 1000)):03d}"
        full = ids.with_check_digits(nine) if rng.random() < 0.5 else None
        out.append(full or nine + f"{int(rng.integers(0, 100)):02d}")
    return out


def test_fast_path_agrees_with_stdnum_on_every_real_form_case():
    numbers = _random_numbers(40_000, seed=1)
    today = dt.date.today()
    check = ids.check_identifiers(numbers, event_dates=today)
    real_form = ~check.test_identity
    expected = np.array([fodselsnummer.is_valid(n) for n in numbers])
    assert real_form.sum() > 20_000 and expected.sum() > 3_000  # the sample has both outcomes in numbers
    np.testing.assert_array_equal(check.valid[real_form], expected[real_form])


def test_check_digits_agree_with_stdnum_for_test_identities():
    numbers = [n for n in _random_numbers(40_000, seed=2) if int(n[2:4]) > 80]
    d, _ = ids.digits_matrix(pd.Series(numbers))
    ours = ids.check_digits_ok(d)
    theirs = np.array([
        n[9] == fodselsnummer.calc_check_digit1(n) and n[10] == fodselsnummer.calc_check_digit2(n) for n in numbers
    ])
    assert theirs.sum() > 1000
    np.testing.assert_array_equal(ours, theirs)


def _valid(six: str, first_individual: int = 123) -> str:
    """The first identifier with date part ``six`` and a usable individual number from ``first_individual``."""
    for individual in range(first_individual, first_individual + 100):
        found = ids.with_check_digits(f"{six}{individual:03d}")
        if found:
            return found
    raise AssertionError(six)


def test_classification_follows_the_spec_order():
    fnr = _valid("010190")  # 1 January 1990
    dnr = _valid("410190")
    hnr = _valid("014190")
    test_fnr = _valid("018190")
    test_dnr = _valid("418190")
    check = ids.check_identifiers([fnr, dnr, hnr, test_fnr, test_dnr], ["FNR", "DNR", "HNR", "FNR", "DNR"])
    assert list(check.kind) == ["FNR", "DNR", "HNR", "FNR", "DNR"]
    assert list(check.test_identity) == [False, False, False, True, True]
    assert list(check.status) == [ids.OK] * 5
    assert list(check.birth_year) == [1990] * 5


def test_reason_codes():
    good = _valid("018190")
    bad_digits = good[:10] + str((int(good[10]) + 1) % 10)
    future = _valid("018120", 523)  # 2020: individual numbers from 500 give the 2000s
    check = ids.check_identifiers(
        [good, bad_digits, "12345", good, future, good],
        ["FNR", "FNR", "FNR", "HNR", "FNR", "FNR"],
        event_dates=pd.Series(["2019-01-01"] * 6),
        production=False,
    )
    assert list(check.status[:5]) == [ids.OK, ids.BAD_CHECK_DIGITS, ids.MALFORMED, ids.TYPE_MISMATCH,
                                      ids.BORN_AFTER_EVENT]
    prod = ids.check_identifiers([good], ["FNR"], production=True)
    assert prod.status[0] == ids.TEST_IDENTITY_IN_PRODUCTION


def test_century_rules():
    cases = {("010154", 500): 1854, ("010139", 500): 2039, ("010140", 900): 1940, ("010199", 400): 1999,
             ("010100", 0): 1900}
    numbers = [_valid(six, first) for six, first in cases]
    check = ids.check_identifiers(numbers)
    assert list(check.birth_year) == list(cases.values())
    no_century = _valid("010150", 750)  # 750-899 with year >= 40: no century
    assert ids.check_identifiers([no_century]).status[0] == ids.BAD_BIRTH_DATE


def _sql_check(numbers: list[str], declared: list[str], event_days: list, production: bool) -> pd.DataFrame:
    """The SQL form of the check (what KPR-KUHR deliveries run in DuckDB) on the same inputs."""
    import duckdb

    con = duckdb.connect()
    frame = pd.DataFrame({"kpr_ident": numbers, "kpr_declared": declared,
                          "kpr_event_day": pd.to_datetime(pd.Series(event_days)).dt.date})
    con.register("cases", frame)
    out = con.execute(f"SELECT kpr_id_status, kpr_birth_year FROM ({ids.sql_outcome('cases', production)})").df()
    con.close()
    return out


def test_sql_form_agrees_with_stdnum_and_with_the_numpy_form_on_every_case():
    rng = np.random.default_rng(3)
    numbers = _random_numbers(30_000, seed=3) + ["", "1234567890", "123456789012", "0101901234x", "٠١٠١٩٠١٢٣٤٥",
                                                  "０１０１９０１２３４５", " 01019012345"]
    declared = list(rng.choice(["FNR", "DNR", "HNR", "", "XYZ"], size=len(numbers), p=[0.7, 0.1, 0.1, 0.05, 0.05]))
    event_days = [None if rng.random() < 0.1 else dt.date(1900, 1, 1) + dt.timedelta(days=int(rng.integers(0, 50_000)))
                  for _ in numbers]
    for production in (False, True):
        numpy_form = ids.check_identifiers(numbers, declared, np.array(event_days, dtype="datetime64[D]"), production)
        sql_form = _sql_check(numbers, declared, event_days, production)
        np.testing.assert_array_equal(sql_form["kpr_id_status"].to_numpy(dtype=object), numpy_form.status)
        np.testing.assert_array_equal(sql_form["kpr_birth_year"].to_numpy(), numpy_form.birth_year)
    # and directly against stdnum (which refuses birth dates after today), on the real-form cases, each
    # declared with its own form
    sql_form = _sql_check(numbers, list(ids.check_identifiers(numbers).kind), [dt.date.today()] * len(numbers), False)
    real_form = ~ids.check_identifiers(numbers).test_identity
    expected = np.array([fodselsnummer.is_valid(n) for n in numbers])
    assert real_form.sum() > 15_000 and expected[real_form].sum() > 2_000
    np.testing.assert_array_equal((sql_form["kpr_id_status"] == ids.OK).to_numpy()[real_form], expected[real_form])
    statuses = set(sql_form["kpr_id_status"]) | set(_sql_check(numbers, declared, event_days, True)["kpr_id_status"])
    assert statuses >= {ids.OK, ids.MALFORMED, ids.BAD_CHECK_DIGITS, ids.BAD_BIRTH_DATE, ids.BORN_AFTER_EVENT,
                        ids.TYPE_MISMATCH, ids.TEST_IDENTITY_IN_PRODUCTION}


def test_the_leak_detector_finds_identifiers_in_text_but_not_inside_pseudonyms_and_digests():
    import hashlib

    person = ids.with_check_digits("150588124")
    assert fodselsnummer.is_valid(person)
    found = [f"fnr={person}", f"record;{person};2024-01-15", f"ab{person}", person, f"{person}.0"]
    for text in found:
        assert ids.identifiers_in_texts([text]) == (1, 1), text
    hidden = [f"{'a' * 26}{person}{'f' * 27}", f"1bdf6e99-22c7-4b2d-0505-a{person}", f"\\x789c{person}ed1d6b6f"]
    for text in hidden:
        assert ids.identifiers_in_texts([text]) == (0, 0), text
    # 50,000 pseudonym-shaped digests: runs of exactly 11 digits in them pass the identifier check by chance
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(50_000)]
    runs = pd.Series([m for d in digests for m in ids.ELEVEN_DIGITS.findall(d)])
    assert (ids.check_identifiers(runs).status == ids.OK).sum() > 0
    assert ids.identifiers_in_texts(digests) == (0, 0)
