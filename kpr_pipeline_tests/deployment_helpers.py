"""A production-shaped deployment for tests and the backfill benchmark: code server, daemon and webserver as
separate processes (``kpr-pipeline serve ...``) on loopback ports, an instance on the given PostgreSQL
database (deploy/dagster.yaml), and the webserver's GraphQL API as the UI uses it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from kpr_pipeline.deployment import PRODUCTION_INSTANCE_YAML

LOCATION, REPOSITORY = "kpr_pipeline", "__repository__"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Deployment:
    root: Path
    env: dict[str, str]
    webserver_url: str
    processes: dict[str, subprocess.Popen]

    def graphql(self, query: str, **variables) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.webserver_url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n" + (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                         for name in self.processes)

    def health(self) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kpr_pipeline.cli", "health"], env=self.env,
                              capture_output=True, text=True, timeout=120)


def instance_env(postgres_url: str) -> dict[str, str]:
    """DAGSTER_PG_* for deploy/dagster.yaml, from a SQLAlchemy URL."""
    url = sa.engine.make_url(postgres_url)
    return {"DAGSTER_PG_HOST": url.host or "127.0.0.1", "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USER": url.username or "postgres", "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_DB": url.database}


@contextmanager
def deployment(root: Path, instance_url: str, settings: dict[str, str], startup_seconds: float = 180):
    """Start the three processes; yield when all are healthy; stop them (their whole process groups)."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PRODUCTION_INSTANCE_YAML, home / "dagster.yaml")
    ports = {"KPR_CODE_SERVER_PORT": str(free_port()), "KPR_WEBSERVER_PORT": str(free_port())}
    env = {**os.environ, **instance_env(instance_url), **settings, **ports, "DAGSTER_HOME": str(home),
           "KPR_CODE_SERVER_HOST": "127.0.0.1", "KPR_WEBSERVER_HOST": "127.0.0.1"}
    processes: dict[str, subprocess.Popen] = {}
    d = Deployment(root, env, f"http://127.0.0.1:{ports['KPR_WEBSERVER_PORT']}", processes)
    try:
        for name in ("code-server", "daemon", "webserver"):
            log = open(root / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
            processes[name] = subprocess.Popen([sys.executable, "-m", "kpr_pipeline.cli", "serve", name], env=env,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + startup_seconds
        while True:
            dead = [n for n, p in processes.items() if p.poll() is not None]
            assert not dead, f"{dead} exited at start\n{d.logs()}"
            if d.health().returncode == 0:
                break
            assert time.monotonic() < deadline, f"not healthy after {startup_seconds} s\n{d.logs()}"
            time.sleep(2)
        yield d
    finally:
        for p in processes.values():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in processes.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


SENSORS = """query {
  sensorsOrError(repositorySelector: {repositoryName: "%s", repositoryLocationName: "%s"}) {
    ... on Sensors { results { name sensorState { id status } } }
  }
}""" % (REPOSITORY, LOCATION)
STOP_SENSOR = """mutation($id: String!) { stopSensor(id: $id) {
  __typename ... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message } } }"""
START_SENSOR = """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on PartitionKeysNotFoundError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status numPartitions runs(limit: 1000) { runId status } } } }"""
SET_NUX_SEEN = "mutation { setNuxSeen }"


def sensors(d: Deployment) -> dict[str, dict]:
    return {s["name"]: s["sensorState"] for s in d.graphql(SENSORS)["sensorsOrError"]["results"]}


def stop_all_sensors(d: Deployment) -> None:
    """Stop every running sensor (asked again while any still reports running: the daemon may be mid-tick)."""
    for _ in range(10):
        running = [s for s in sensors(d).values() if s["status"] == "RUNNING"]
        if not running:
            return
        for state in running:
            answer = d.graphql(STOP_SENSOR, id=state["id"])["stopSensor"]
            assert answer["__typename"] == "StopSensorMutationResult", answer
        time.sleep(1)
    raise AssertionError(f"sensors still running: {sensors(d)}")


def start_sensor(d: Deployment, name: str) -> str:
    selector = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION, "sensorName": name}
    answer = d.graphql(START_SENSOR, selector=selector)["startSensor"]
    assert answer["__typename"] == "Sensor", answer
    return answer["sensorState"]["status"]


def launch_asset_backfill(d: Deployment, assets: str | list[str], partitions: list[str], title: str = "") -> str:
    """What the UI's 'Materialize selected' dialog sends for assets of one partitioning and a set of partitions."""
    selection = [{"path": [a]} for a in ([assets] if isinstance(assets, str) else assets)]
    params = {"assetSelection": selection, "partitionNames": partitions, "title": title or None}
    answer = d.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
  ... on Runs { results { runId status } } } }"""


def launch_run_per_partition(d: Deployment, job: str, partitions: list[str], tag: str) -> list[str]:
    """One run of ``job`` per partition (what a backfill of assets without backfill policies launches), each
    tagged ``kpr/bench=tag``; the run ids."""
    ids = []
    for partition in partitions:
        params = {"selector": {"jobName": job, "repositoryName": REPOSITORY, "repositoryLocationName": LOCATION},
                  "runConfigData": {}, "executionMetadata": {"tags": [
                      {"key": "dagster/partition", "value": partition}, {"key": "kpr/bench", "value": tag}]}}
        answer = d.graphql(LAUNCH_RUN, params=params)["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        ids.append(answer["run"]["runId"])
    return ids


def wait_for_runs(d: Deployment, tag: str, count: int, timeout: float) -> dict[str, int]:
    """Poll until the ``count`` runs tagged ``kpr/bench=tag`` have finished; runs per status."""
    deadline = time.monotonic() + timeout
    while True:
        runs = d.graphql(RUNS, tags=[{"key": "kpr/bench", "value": tag}])["runsOrError"]["results"]
        statuses: dict[str, int] = {}
        for run in runs:
            statuses[run["status"]] = statuses.get(run["status"], 0) + 1
        if len(runs) == count and not set(statuses) & {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}:
            return statuses
        assert time.monotonic() < deadline, f"runs still going: {statuses}\n{d.logs()}"
        time.sleep(2)


def wait_for_backfill(d: Deployment, backfill_id: str, timeout: float) -> dict:
    """Poll until the backfill has finished; its last state (status, runs)."""
    deadline = time.monotonic() + timeout
    while True:
        state = d.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
        if state["status"] not in ("REQUESTED", "CANCELING"):
            return state
        assert time.monotonic() < deadline, f"backfill {backfill_id} still {state['status']}\n{d.logs()}"
        time.sleep(2)
