"""``kpr-pipeline generate``: a whole synthetic landing zone, deterministic and streaming."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from kpr_pipeline.synth.care import CareGenerator
from kpr_pipeline.synth.iplos import IPLOS_YEARS, SYNTHETIC_IPLOS_KEY, IplosGenerator
from kpr_pipeline.synth.kuhr import KuhrGenerator, delivery_days
from kpr_pipeline.synth.output import GROUND_TRUTH_FILE, GroundTruth
from kpr_pipeline.synth.population import build_population

DEFAULT_SCALE = 0.001
DEFAULT_START = "2017-01"
DEFAULT_END = "2017-12"
GENERATOR_FILE = "generator.json"
OUTPUTS = ("kuhr", "helse_omsorg", "iplos", GROUND_TRUTH_FILE, GENERATOR_FILE)


@dataclass(frozen=True)
class GenerateOptions:
    out: Path
    seed: int = 1
    scale: float = DEFAULT_SCALE
    start: str = DEFAULT_START
    end: str = DEFAULT_END
    defects: float = 0.0
    progress: bool = True


@dataclass
class GenerateSummary:
    persons: int
    kuhr_deliveries: int
    kuhr_rows: int
    care_files: int
    iplos_rows: int
    ground_truth_records: int


def parse_month(value: str, end: bool = False) -> dt.date:
    try:
        first = dt.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"expected a month as YYYY-MM, got {value!r}") from None
    if not end:
        return first
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def generate(options: GenerateOptions) -> GenerateSummary:
    if options.scale <= 0 or options.scale > 1.0:
        raise ValueError("--scale must be above 0 and at most 1.0")
    if not 0 <= options.defects < 0.5:
        raise ValueError("--defects must be at least 0 and below 0.5")
    start, end = parse_month(options.start), parse_month(options.end, end=True)
    if end < start:
        raise ValueError("--end is before --start")
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # same seed, same bytes: start from nothing of ours
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    pop = build_population(options.seed, options.scale)
    truth = GroundTruth(out)
    care_years = [y for y in range(max(start.year, 2017), end.year + 1) if dt.date(y, 12, 31) <= end]
    days = delivery_days(start, end)
    kuhr = KuhrGenerator(pop, options.seed, out, truth, options.defects)
    care = CareGenerator(pop, options.seed, out, truth, options.defects)
    iplos = IplosGenerator(pop, options.seed, out, truth, options.defects)
    total = len(days) + sum(len(care.municipalities(y)) for y in care_years) + len(IPLOS_YEARS)
    # disable=None: a bar on a terminal, nothing in logs and pipes.
    bar = tqdm(total=total, desc="generate", unit="unit", disable=None if options.progress else True, file=sys.stderr)
    for day in days:
        kuhr.write_day(day)
        bar.update(1)
        bar.set_postfix(regninger=kuhr.rows_written, refresh=False)
    kuhr.finish()
    for year in care_years:
        care.write_year(year, progress=bar)
    truth.flush()
    iplos_rows = 0
    for year in IPLOS_YEARS:
        iplos_rows += iplos.write_year(year)
        bar.update(1)
    truth.flush()
    bar.close()
    (out / GENERATOR_FILE).write_text(json.dumps({
        "generator": "kpr-pipeline generate",
        "seed": options.seed, "scale": options.scale, "start": options.start, "end": options.end,
        "defects": options.defects, "persons": len(pop), "iplos_pseudonym_key": SYNTHETIC_IPLOS_KEY,
        "calibration": {"gp_consultations_per_inhabitant": 3.0, "share_with_gp_consultation": 0.72,
                        "share_80_plus_with_care": 0.28},
    }, indent=2) + "\n", encoding="utf-8")
    records = sum(1 for _ in open(out / GROUND_TRUTH_FILE, encoding="utf-8")) if (out / GROUND_TRUTH_FILE).exists() else 0
    return GenerateSummary(
        persons=len(pop), kuhr_deliveries=len(list((out / "kuhr").glob("*.csv*"))), kuhr_rows=kuhr.rows_written,
        care_files=care.files_written, iplos_rows=iplos_rows, ground_truth_records=records,
    )

