"""Calibration of the synthetic data: who uses which service how often, and how late claims come.

Figures are orders of magnitude from public KPR and Helfo statistics; the GP figures are the
calibration targets of spec/statistics.md (about 3.0 consultations per inhabitant a year, 72 % of
inhabitants with at least one).
"""

from __future__ import annotations

import numpy as np

# Age groups of spec/statistics.md, as lower bounds.
AGE_BOUNDS = np.array([0, 6, 16, 20, 30, 40, 50, 67, 80, 90])

#: National yearly regninger per inhabitant, per (tjeneste, kontakttype); None = only tillegg takster.
RATES: dict[str, dict[str | None, float]] = {
    "FASTLEGE": {"konsultasjon": 3.0, "enkel_kontakt": 1.3, "telefonkontakt": 0.9, "sykebesok": 0.03,
                 "tverrfaglig_samarbeid": 0.15, None: 0.02},
    "LEGEVAKT": {"konsultasjon": 0.28, "sykebesok": 0.01, "enkel_kontakt": 0.03, "telefonkontakt": 0.06},
    "FYSIOTERAPI": {"behandling": 1.15, "sykebesok": 0.05},
    "KIROPRAKTOR": {"behandling": 0.25},
    "TANNLEGE": {"behandling": 0.2},
    "TANNPLEIER": {"behandling": 0.03},
    "LOGOPED": {"behandling": 0.05, "sykebesok": 0.002},
    "AUDIOPEDAGOG": {"behandling": 0.005},
    "ORTOPTIST": {"behandling": 0.01},
    "HELSESTASJON_JORDMOR": {"konsultasjon": 0.035, "sykebesok": 0.005},
}

#: Relative use by age group (AGE_BOUNDS) and the female/male ratio, per service.
AGE_PROFILE: dict[str, tuple[list[float], float]] = {
    "FASTLEGE": ([0.9, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.7, 2.2, 2.4], 1.35),
    "LEGEVAKT": ([1.6, 0.7, 1.1, 1.1, 0.9, 0.8, 0.8, 1.0, 1.7, 2.5], 1.1),
    "FYSIOTERAPI": ([0.2, 0.3, 0.7, 0.8, 1.0, 1.2, 1.4, 1.5, 1.2, 0.8], 1.6),
    "KIROPRAKTOR": ([0.02, 0.2, 0.8, 1.3, 1.6, 1.6, 1.3, 0.6, 0.2, 0.05], 1.2),
    "TANNLEGE": ([0.05, 0.1, 0.5, 0.8, 0.9, 1.0, 1.3, 1.6, 1.5, 1.0], 1.1),
    "TANNPLEIER": ([0.0, 0.0, 0.3, 0.7, 0.9, 1.0, 1.3, 1.6, 1.5, 1.0], 1.1),
    "LOGOPED": ([4.0, 3.0, 0.3, 0.2, 0.2, 0.3, 0.5, 1.0, 1.2, 0.8], 0.6),
    "AUDIOPEDAGOG": ([1.0, 0.8, 0.3, 0.3, 0.4, 0.5, 0.9, 2.0, 3.0, 3.0], 1.0),
    "ORTOPTIST": ([5.0, 3.0, 0.3, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3], 1.0),
    "HELSESTASJON_JORDMOR": ([0.0, 0.0, 0.3, 3.5, 3.0, 0.4, 0.0, 0.0, 0.0, 0.0], 1000.0),
}

SERVICES = list(RATES)

#: Allowed practice types per service (spec/kuhr-delivery.md) with the share of practices of each.
PRAKSISTYPER: dict[str, list[tuple[str, float]]] = {
    "FASTLEGE": [("FALE", 0.85), ("FALO", 0.06), ("FATU", 0.05), ("KOFA", 0.04)],
    "LEGEVAKT": [("LEVA", 0.6), ("LEKO", 0.25), ("KOLE", 0.15)],
    "FYSIOTERAPI": [("FYNO", 0.6), ("FYKO", 0.15), ("KOFY", 0.1), ("FYMT", 0.1), ("FYPM", 0.05)],
    "KIROPRAKTOR": [("KINO", 1.0)],
    "TANNLEGE": [("TANN", 0.8), ("TAFY", 0.15), ("TAKJ", 0.05)],
    "TANNPLEIER": [("TAPL", 0.6), ("TAPO", 0.4)],
    "LOGOPED": [("LOGO", 1.0)],
    "AUDIOPEDAGOG": [("AUDI", 1.0)],
    "ORTOPTIST": [("ORTO", 1.0)],
    "HELSESTASJON_JORDMOR": [("HELS", 0.5), ("KOHS", 0.3), ("JORD", 0.2)],
}

#: Practices per 10,000 inhabitants of a municipality, per service (at least one each).
PRACTICES_PER_10K = {"FASTLEGE": 9.0, "LEGEVAKT": 0.3, "FYSIOTERAPI": 5.0, "KIROPRAKTOR": 1.5, "TANNLEGE": 2.0,
                     "TANNPLEIER": 0.5, "LOGOPED": 0.5, "AUDIOPEDAGOG": 0.1, "ORTOPTIST": 0.1,
                     "HELSESTASJON_JORDMOR": 0.5}

#: Common ICPC-2 codes in general practice, roughly by frequency.
ICPC2 = ["R74", "A97", "L03", "K86", "P76", "L86", "T90", "R05", "P74", "L02", "S18", "A04", "R78", "K78", "D73",
         "L84", "N01", "F70", "H71", "U71", "W11", "X01", "Y07", "B80", "Z09", "L92", "R75", "S87", "D11", "T93"]
ICD10 = ["J06.9", "M54.5", "I10", "E11.9", "F32.1", "J45", "K21.0", "M17", "N39.0", "R51"]

# Reporting delay from treatment day to receipt, in days: most within weeks, a tail past 6 months.
_DELAY_BLOCKS = [(0, 0, 0.12), (1, 7, 0.46), (8, 30, 0.26), (31, 90, 0.10), (91, 183, 0.045), (184, 300, 0.015)]
MAX_DELAY = _DELAY_BLOCKS[-1][1]


def delay_pmf() -> np.ndarray:
    pmf = np.zeros(MAX_DELAY + 1)
    for lo, hi, share in _DELAY_BLOCKS:
        pmf[lo : hi + 1] += share / (hi - lo + 1)
    return pmf / pmf.sum()


WEEKDAY_FACTOR = np.array([1.25, 1.2, 1.2, 1.15, 1.0, 0.1, 0.1])  # Monday..Sunday (legevakt: flat)

# Event shares in KUHR (of regninger).
CREDIT_SHARE = 0.005  # credited later
CORRECTION_SHARE = 0.5  # of credits, followed by a corrected regning
RESEND_SHARE = 0.002
DOUBLE_SHARE = 0.0005
FRIKORT_SHARE = 0.15
UNKNOWN_RESIDENCE_SHARE = 0.002
OTHER_PRAKSISKOMMUNE_SHARE = 0.08

# --- KPR-helse og omsorg -----------------------------------------------------------------
#: Share of persons with a municipal care service by age group (AGE_BOUNDS); 80+ about 28 %.
CARE_SHARE = [0.004, 0.006, 0.008, 0.009, 0.010, 0.012, 0.020, 0.060, 0.22, 0.45]
#: (service code, share of users, hours-per-week range or None, condition)
CARE_SERVICES = [
    (15, 0.70, (0.5, 12.0), None),
    (1, 0.35, (0.5, 6.0), None),
    (6, 0.40, None, None),
    (5, 0.10, None, None),
    (4, 0.08, None, None),
    (9, 0.04, (1.0, 6.0), "young"),
    (3, 0.02, (10.0, 40.0), "young"),
    (21, 0.16, None, "old"),
    (20, 0.08, None, None),
    (29, 0.05, None, None),  # 12 before 2019
]
FUNCTION_VARIABLES = [
    "SOSIAL_DELTAKELSE", "BESLUTNINGER_I_DAGLIGLIVET", "STYRE_ATFERD", "ALMINNELIG_HUSARBEID",
    "SKAFFE_VARER_OG_TJENESTER", "PERSONLIG_HYGIENE", "IVARETA_EGEN_HELSE", "KLE_AV_OG_PAA_SEG", "SPISE",
    "LAGE_MAT", "BEVEGE_SEG_INNENDORS", "BEVEGE_SEG_UTENDORS", "TOALETT", "HUKOMMELSE", "KOMMUNIKASJON",
    "SYN", "HORSEL",
]
FAGSYSTEMER = ["Gerica 12.3", "Profil 9.2", "CosDoc 4.1", "Visma Flyt Omsorg 3.0"]
LATE_REPORTER_SHARE = 0.06
RESUBMISSION_SHARE = 0.05
MISSING_REPORTER_SHARE = 0.01
SECOND_MUNICIPALITY_SHARE = 0.005

# IPLOS 2017 against KPR 2017: planted differences.
IPLOS_ONLY_KPR_SHARE = 0.01  # persons in KPR 2017 missing from IPLOS 2017
IPLOS_EXTRA_PERSON_SHARE = 0.01  # persons in IPLOS 2017 not reported to KPR 2017
IPLOS_START_SHIFT_SHARE = 0.02
IPLOS_HOURS_CHANGE_SHARE = 0.02
