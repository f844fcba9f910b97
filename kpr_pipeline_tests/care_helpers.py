"""Helpers for KPR-helse og omsorg tests: hand-made reports in the spec format."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from kpr_pipeline.domain.identifiers import with_check_digits

OSLO = ZoneInfo("Europe/Oslo")


def make_identity(serial: int, birth_year: int = 1940) -> str:
    """A valid test identity (month + 80) born in January ``birth_year``, distinct for each serial < 1,400."""
    day, block = 1 + serial % 28, serial // 28
    for k in range(10):
        ident = with_check_digits(f"{day:02d}81{birth_year % 100:02d}{block * 10 + k:03d}")
        if ident:
            return ident
    raise ValueError("no identifier")


@dataclass
class Service:
    kode: int
    fra: str
    til: str | None = None
    timer: float | None = None

    def xml(self) -> str:
        return (f"<tjeneste><tjenestekode>{self.kode}</tjenestekode><fraDato>{self.fra}</fraDato>"
                + (f"<tilDato>{self.til}</tilDato>" if self.til else "")
                + (f"<timerPerUke>{self.timer:g}</timerPerUke>" if self.timer is not None else "") + "</tjeneste>")


@dataclass
class Person:
    ident: str
    services: list[Service]
    id_type: str = "FNR"
    kjonn: str = "2"
    fodselsaar: int = 1940
    bosted: str | None = None
    dodsdato: str | None = None
    assessment: str | None = None
    extra: str = ""

    def xml(self, code: str) -> str:
        parts = [f'<bruker><personId type="{self.id_type}">{self.ident}</personId><kjonn>{self.kjonn}</kjonn>'
                 f"<fodselsaar>{self.fodselsaar}</fodselsaar><bostedskommune>{self.bosted or code}</bostedskommune>"]
        if self.dodsdato:
            parts.append(f"<dodsdato>{self.dodsdato}</dodsdato>")
        if self.assessment:
            parts.append(f'<funksjonsvurdering dato="{self.assessment}"><variabel navn="HUKOMMELSE" skaar="3"/>'
                         '<variabel navn="SPISE" skaar="1"/></funksjonsvurdering>')
        parts += [s.xml() for s in self.services]
        parts.append(self.extra + "</bruker>\n")
        return "".join(parts)


@dataclass
class Report:
    year: int
    code: str
    when: dt.datetime
    persons: list[Person] = field(default_factory=list)
    encoding: str = "UTF-8"
    fagsystem: str = "Gerica 12.3"
    prolog: str = ""
    antall: int | None = None

    @property
    def name(self) -> str:
        return f"kpr_ho_{self.year}_{self.code}_{self.when.strftime('%Y%m%dT%H%M%S')}.xml"

    def text(self) -> str:
        antall = len(self.persons) if self.antall is None else self.antall
        return (f'<?xml version="1.0" encoding="{self.encoding}"?>\n{self.prolog}'
                '<kprHelseOmsorg xmlns="urn:no:kpr:helse-omsorg:1" versjon="1.0">\n'
                f"<hode><kommunenummer>{self.code}</kommunenummer><rapporteringsaar>{self.year}</rapporteringsaar>"
                f"<uttrekkstidspunkt>{self.when.isoformat()}</uttrekkstidspunkt><fagsystem>{self.fagsystem}</fagsystem>"
                f"<antallBrukere>{antall}</antallBrukere></hode>\n"
                + "".join(p.xml(self.code) for p in self.persons) + "</kprHelseOmsorg>\n")

    def write(self, landing: Path) -> Path:
        folder = landing / "helse_omsorg" / str(self.year)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.name
        path.write_bytes(self.text().encode("iso-8859-1" if self.encoding == "ISO-8859-1" else "utf-8"))
        return path


def when(year: int, month: int, day: int, hour: int = 9, minute: int = 30, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=OSLO)
