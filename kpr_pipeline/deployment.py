"""The production processes: a code server, the daemon and the webserver, each its own process.

``kpr-pipeline serve code-server|daemon|webserver`` checks the settings and the instance first (one clear
sentence when something is wrong), then replaces itself with Dagster's own command, so a process
supervisor (systemd, a container runtime) sees and signals the real process. The daemon and the webserver
load the code location from the code server (``deploy/workspace.yaml``), so new code is deployed by
restarting the code server alone. ``kpr-pipeline health`` asks each process whether it is alive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kpr_pipeline.settings import Settings, SettingsError

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
LOCAL_INSTANCE_YAML = DEPLOY_DIR / "dagster-local.yaml"  # embedded SQLite storage: the laptop, the demo, tests
PRODUCTION_INSTANCE_YAML = DEPLOY_DIR / "dagster.yaml"  # PostgreSQL storage, run queue, retries, pools
WORKSPACE_YAML = DEPLOY_DIR / "workspace.yaml"  # the code location, served by the code server
PROCESSES = ("code-server", "daemon", "webserver")
DEFAULTS = {"KPR_CODE_SERVER_HOST": "127.0.0.1", "KPR_CODE_SERVER_PORT": "4266",
            "KPR_WEBSERVER_HOST": "127.0.0.1", "KPR_WEBSERVER_PORT": "3000"}


@dataclass(frozen=True)
class Endpoints:
    """Where the processes listen (KPR_CODE_SERVER_HOST/PORT, KPR_WEBSERVER_HOST/PORT)."""

    code_server_host: str
    code_server_port: int
    webserver_host: str
    webserver_port: int

    @classmethod
    def from_env(cls, environ=None) -> "Endpoints":
        e = {**DEFAULTS, **{k: v for k, v in (os.environ if environ is None else environ).items() if v}}
        ports = {}
        for name in ("KPR_CODE_SERVER_PORT", "KPR_WEBSERVER_PORT"):
            if not e[name].isdigit() or not 0 < int(e[name]) < 65536:
                raise SettingsError(f"{name} must be a TCP port number, not {e[name]!r}.")
            ports[name] = int(e[name])
        return cls(e["KPR_CODE_SERVER_HOST"], ports["KPR_CODE_SERVER_PORT"], e["KPR_WEBSERVER_HOST"],
                   ports["KPR_WEBSERVER_PORT"])

    @property
    def webserver_url(self) -> str:
        return f"http://{self.webserver_host}:{self.webserver_port}"


def _dagster_home() -> Path:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise SettingsError("DAGSTER_HOME must be set for the deployment processes (a directory with dagster.yaml; "
                            "deploy/dagster.yaml is the production one).")
    if not (Path(home) / "dagster.yaml").is_file():
        raise SettingsError(f"DAGSTER_HOME {home} has no dagster.yaml (copy deploy/dagster.yaml there).")
    return Path(home)


def _executable(name: str) -> str:
    """Dagster's commands from the same environment as this one (a venv need not be on PATH)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def command_for(process: str, endpoints: Endpoints) -> list[str]:
    """The Dagster command line of one production process."""
    if process == "code-server":
        return [_executable("dagster"), "code-server", "start", "-m", "kpr_pipeline.definitions", "-a", "defs",
                "--location-name", "kpr_pipeline", "-h", endpoints.code_server_host,
                "-p", str(endpoints.code_server_port)]
    if process == "daemon":
        return [_executable("dagster-daemon"), "run", "-w", str(WORKSPACE_YAML)]
    if process == "webserver":
        return [_executable("dagster-webserver"), "-w", str(WORKSPACE_YAML), "-h", endpoints.webserver_host,
                "-p", str(endpoints.webserver_port)]
    raise ValueError(f"unknown process {process!r}: one of {', '.join(PROCESSES)}")


def serve(process: str) -> None:
    """Check the settings and the instance, then become the Dagster process (never returns)."""
    endpoints = Endpoints.from_env()
    if process == "code-server":
        Settings.from_env()  # the code location reads them; a wrong one stops here with its sentence
    _dagster_home()
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)  # deploy/workspace.yaml reads them
    if process == "daemon":
        set_warehouse_pool_limit()
    command = command_for(process, endpoints)
    os.execv(command[0], command)


def set_warehouse_pool_limit() -> int | None:
    """Give the warehouse pool the instance's ``pools.default_limit`` before the daemon launches runs, as an
    explicit limit; return it. Left to Dagster, the first step to claim a pool creates its limit, and on
    PostgreSQL two runs doing that at once both insert it and one run crashes (dagster-io/dagster#33552).
    The daemon is one process, so setting it here cannot race; a later change of the default in
    dagster.yaml takes effect when the daemon restarts."""
    import dagster as dg

    from kpr_pipeline.defs.resources import WAREHOUSE_POOL

    with dg.DagsterInstance.get() as instance:
        limit = instance.global_op_concurrency_default_limit
        if limit is not None and instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, limit)
        return limit


@dataclass(frozen=True)
class Health:
    process: str
    ok: bool
    detail: str


def check_code_server(endpoints: Endpoints) -> Health:
    proc = subprocess.run([_executable("dagster"), "api", "grpc-health-check", "-h", endpoints.code_server_host,
                           "-p", str(endpoints.code_server_port)], capture_output=True, text=True, timeout=60)
    where = f"{endpoints.code_server_host}:{endpoints.code_server_port}"
    return Health("code-server", proc.returncode == 0, f"serving at {where}" if proc.returncode == 0
                  else f"not serving at {where}")


def check_webserver(endpoints: Endpoints) -> Health:
    url = f"{endpoints.webserver_url}/server_info"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the operator's own URL)
            return Health("webserver", response.status == 200, f"{url} answered {response.status}")
    except OSError as exc:
        return Health("webserver", False, f"{url} did not answer ({type(exc).__name__})")


def check_daemon() -> Health:
    """The daemon writes a heartbeat into the instance; Dagster's liveness check reads it."""
    _dagster_home()
    proc = subprocess.run([_executable("dagster-daemon"), "liveness-check"], capture_output=True, text=True,
                          timeout=60)
    return Health("daemon", proc.returncode == 0, "heartbeats are recent" if proc.returncode == 0
                  else "no recent heartbeat")


def health(processes: tuple[str, ...] = PROCESSES) -> list[Health]:
    endpoints = Endpoints.from_env()
    checks = {"code-server": lambda: check_code_server(endpoints), "webserver": lambda: check_webserver(endpoints),
              "daemon": check_daemon}
    return [checks[p]() for p in processes]
