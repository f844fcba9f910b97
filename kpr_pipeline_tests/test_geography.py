"""Mapping on the real code history."""

import pytest

from kpr_pipeline.domain.geography import default_history


@pytest.fixture(scope="module")
def history():
    return default_history()


def test_aalesund_chain_through_2020_and_the_2024_split(history):
    # 1534 Haram merged into 1507 Ålesund in 2020; 1507 split into 1508 Ålesund and 1580 Haram in 2024.
    assert history.successors("1534", 2016) == {"1508": 0.5, "1580": 0.5}
    assert history.successors("1507", 2023) == {"1508": 0.5, "1580": 0.5}
    assert history.successors("1507", 2023, to_year=2023) == {"1507": 1.0}


def test_snillfjord_and_tysfjord_splits(history):
    assert history.successors("5012", 2019) == {"5055": 0.35, "5056": 0.35, "5059": 0.3}
    assert history.successors("1850", 2019) == {"1806": 0.5, "1875": 0.5}


def test_trondelag_2018_chain(history):
    # 1601 Trondheim became 5001 in 2018; 5001 is still valid.
    assert history.successors("1601", 2017) == {"5001": 1.0}
    assert history.successors("1613", 2017, to_year=2019) == {"5012": 1.0}  # Snillfjord before its split


def test_every_chain_since_2016_ends_in_a_current_code(history):
    assert history.broken_chains(from_year=2016) == []
    assert len(history.valid_codes(2024)) == 360  # 357 municipalities + 2100, 2200, 9999


def test_forward_map_weights_sum_to_one_per_code(history):
    fm = history.forward_map(2019)
    sums = fm.groupby("code")["weight"].sum()
    assert (abs(sums - 1.0) < 1e-9).all()
    assert set(fm["current_code"]) <= set(history.valid_codes(2024))
