"""A PostgreSQL server of the test's own (initdb and pg_ctl of the installed PostgreSQL) on a free loopback
port, so that a test can restart or stop it without disturbing the shared server the other tests use."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from kpr_pipeline_tests.deployment_helpers import free_port


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)),
                                             None)
    return Path(os.path.realpath(found)).parent if found else None


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def available() -> bool:
    return _bindir() is not None and (os.geteuid() != 0 or shutil.which("runuser") is not None)


@dataclass
class Cluster:
    base: Path
    port: int

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(_as_owner([str(_bindir() / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args]),
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.pg_ctl("-l", str(self.base / "server.log"), "-o",
                    f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off", "start")

    def restart(self) -> None:
        """A fast restart (what an upgrade or a failover does): every session is ended, transactions roll back."""
        self.pg_ctl("-l", str(self.base / "server.log"), "-m", "fast", "restart")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="kpr-private-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        cluster = Cluster(base, free_port())
        subprocess.run(_as_owner([str(_bindir() / "initdb"), "-D", str(cluster.data), "-U", "postgres", "-A", "trust",
                                  "--no-sync", "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
        cluster.start()
        try:
            yield cluster
        finally:
            subprocess.run(_as_owner([str(_bindir() / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop"]),
                           capture_output=True, timeout=120)
    finally:
        shutil.rmtree(base, ignore_errors=True)
