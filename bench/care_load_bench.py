"""Benchmark of KPR-helse og omsorg loading: a national reporting year, then one municipality resubmitting.

In one run on the same machine, on each warehouse (DuckDB, then PostgreSQL when reachable):

  (a) a national-size reporting year (every municipality valid in 2023, ``--persons`` persons in all,
      spread like the population; default 400,000) processed from XML to warehouse, file by file
      exactly as the pipeline does (``process_report``): persons per second and peak RSS;
  (b) one municipality of median size resubmitting (a newer extract of the same persons), alone;
  (c) the largest municipality (Oslo) resubmitting, alone.

Each step is a separate process, so peak RSS is that step's alone. The ratio (a)/(b) is what a
steward saves by re-running one municipality instead of the year (target: at least 50x).

    python bench/care_load_bench.py
    python bench/care_load_bench.py --persons 40000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from peak_memory import own_peak_rss_kib

POSTGRES = os.environ.get("KPR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
YEAR = 2023
OSLO = ZoneInfo("Europe/Oslo")
KEY = "benchmark-pseudonym-key-0123456789abcdef"
SERVICES = [(15, True), (1, True), (6, False), (21, False), (4, False), (2, True), (5, False)]


def municipality_sizes(total: int) -> dict[str, int]:
    """Persons per municipality valid in ``YEAR``, in proportion to the synthetic population (at least 1)."""
    import numpy as np

    from kpr_pipeline.domain import reference
    from kpr_pipeline.synth.population import build_population

    codes = reference.municipality_codes_valid(YEAR, reporters_only=True)
    living = build_population(3, 0.02).codes_in_year(YEAR)
    counts = {c: int(n) for c, n in zip(*np.unique(living, return_counts=True))}
    weights = np.array([counts.get(c, 1) for c in codes], dtype=float)
    sizes = np.maximum(1, np.round(weights / weights.sum() * total)).astype(int)
    return dict(zip(codes, sizes.tolist()))


def write_report(folder: Path, code: str, persons: int, first_serial: int, when: dt.datetime) -> Path:
    """A report of ``persons`` test identities, 1-3 services and a function assessment each."""
    import numpy as np

    from kpr_pipeline.domain.identifiers import with_check_digits

    rng = np.random.default_rng(int(code))
    path = folder / f"kpr_ho_{YEAR}_{code}_{when:%Y%m%dT%H%M%S}.xml"
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<kprHelseOmsorg xmlns="urn:no:kpr:helse-omsorg:1" versjon="1.0">\n'
                f"<hode><kommunenummer>{code}</kommunenummer><rapporteringsaar>{YEAR}</rapporteringsaar>"
                f"<uttrekkstidspunkt>{when.isoformat()}</uttrekkstidspunkt><fagsystem>Bench 1.0</fagsystem>"
                f"<antallBrukere>{persons}</antallBrukere></hode>\n")
        serial = first_serial
        for _ in range(persons):
            ident = None
            while ident is None:  # test identities (month + 80), born 1920-1999
                serial += 1
                ident = with_check_digits(f"{1 + serial % 28:02d}{81 + serial % 12:02d}{20 + serial // 28 % 80:02d}"
                                          f"{serial // 2240 % 500:03d}")
            birth = 1900 + int(ident[4:6])
            parts = [f'<bruker><personId type="FNR">{ident}</personId><kjonn>{1 + serial % 2}</kjonn>'
                     f"<fodselsaar>{birth}</fodselsaar><bostedskommune>{code}</bostedskommune>"
                     f'<funksjonsvurdering dato="{YEAR}-06-01">'
                     + "".join(f'<variabel navn="{v}" skaar="{1 + (serial + i) % 5}"/>' for i, v in enumerate(
                         ("PERSONLIG_HYGIENE", "HUKOMMELSE", "SPISE", "TOALETT", "BEVEGE_SEG_INNENDORS")))
                     + "</funksjonsvurdering>"]
            for k in rng.choice(len(SERVICES), size=1 + serial % 3, replace=False):
                kode, hourly = SERVICES[k]
                fra = dt.date(YEAR - 1, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700)))
                parts.append(f"<tjeneste><tjenestekode>{kode}</tjenestekode><fraDato>{fra.isoformat()}</fraDato>"
                             + (f"<timerPerUke>{1 + serial % 20}</timerPerUke>" if hourly else "") + "</tjeneste>")
            parts.append("</bruker>\n")
            f.write("".join(parts))
        f.write("</kprHelseOmsorg>\n")
    return path


def build_year(landing: Path, total: int) -> dict[str, int]:
    folder = landing / "helse_omsorg" / str(YEAR)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = municipality_sizes(total)
    serial = 0
    for i, (code, n) in enumerate(sorted(sizes.items())):
        write_report(folder, code, n, serial, dt.datetime(YEAR + 1, 1, 2 + i % 12, 9, 0, tzinfo=OSLO))
        serial += n * 3
    return sizes


def step(args) -> None:
    """One measured step in this process: process the given files, print seconds and persons."""
    from kpr_pipeline.ingest.care import process_report, report_files
    from kpr_pipeline.warehouse import Warehouse

    warehouse = Warehouse(args.url)
    warehouse.ensure_schema()
    landing = Path(args.landing)
    files = [p for p in report_files(landing) if args.only is None or p.name == args.only]
    t0 = time.perf_counter()
    persons = sum(process_report(warehouse, landing, p, False, KEY).persons for p in files)
    seconds = time.perf_counter() - t0
    rss = own_peak_rss_kib() / 1024
    print(f"RESULT {seconds:.2f} {persons} {len(files)} {rss:.0f}")


def run_step(url: str, landing: Path, only: str | None = None) -> tuple[float, int, int, float]:
    cmd = [sys.executable, __file__, "--step", "--url", url, "--landing", str(landing)] + (["--only", only] if only else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    seconds, persons, files, rss = line.split()[1:]
    return float(seconds), int(persons), int(files), float(rss)


def fresh_postgres(name: str) -> str | None:
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL not reachable ({type(exc).__name__}); DuckDB only")
        return None
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--persons", type=int, default=400_000)
    p.add_argument("--step", action="store_true")
    p.add_argument("--url")
    p.add_argument("--landing")
    p.add_argument("--only")
    args = p.parse_args()
    if args.step:
        step(args)
        return
    with tempfile.TemporaryDirectory(prefix="kpr-care-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        sizes = build_year(tmp / "landing", args.persons)
        folder = tmp / "landing" / "helse_omsorg" / str(YEAR)
        mb = sum(f.stat().st_size for f in folder.glob("*.xml")) / 1e6
        print(f"built {len(sizes)} municipal reports, {sum(sizes.values()):,} persons, {mb:.0f} MB of XML "
              f"in {time.perf_counter() - t0:.0f} s")
        ordered = sorted(sizes, key=sizes.get)
        median, largest = ordered[len(ordered) // 2], ordered[-1]
        targets = [("duckdb", f"duckdb:///{tmp / 'warehouse.duckdb'}"), ("postgresql", fresh_postgres("kpr_care_bench"))]
        print(f"{'warehouse':<11} {'step':<34} {'files':>5} {'persons':>8} {'seconds':>8} {'persons/s':>9} {'RSS MiB':>8}")
        for name, url in targets:
            if url is None:
                continue
            landing = tmp / f"landing_{name}"
            subprocess.run(["cp", "-r", str(tmp / "landing"), str(landing)], check=True)
            year = run_step(url, landing)
            rows = [("(a) national year", year)]
            for label, code, serial in (("(b) median municipality resubmits", median, 0),
                                        ("(c) largest municipality resubmits", largest, 0)):
                start = sum(sizes[c] * 3 for c in sorted(sizes) if c < code)
                path = write_report(landing / "helse_omsorg" / str(YEAR), code, sizes[code], start,
                                    dt.datetime(YEAR + 1, 1, 20, 12, 0, tzinfo=OSLO))
                rows.append((f"{label} ({code})", run_step(url, landing, path.name)))
            for label, (seconds, persons, files, rss) in rows:
                print(f"{name:<11} {label:<34} {files:>5} {persons:>8,} {seconds:>8.2f} {persons / seconds:>9,.0f} "
                      f"{rss:>8.0f}")
            print(f"{name:<11} year / median resubmission = {year[0] / rows[1][1][0]:.0f}x, "
                  f"year / largest resubmission = {year[0] / rows[2][1][0]:.1f}x")


if __name__ == "__main__":
    main()
