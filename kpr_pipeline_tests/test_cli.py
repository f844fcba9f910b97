"""The command line as a user runs it."""

import os
import subprocess
import sys

import pytest

from kpr_pipeline.cli import main


def test_generate_then_run_on_the_embedded_defaults(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["generate", "--out", "data/landing", "--scale", "0.0003", "--start", "2017-01", "--end", "2017-02",
                 "--quiet"]) == 0
    assert (tmp_path / "data/landing/kuhr").is_dir()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out.split("jobs:")[1].splitlines()[0]
    assert "KUHR: 64 new deliveries ready" in out and "KUHR files loaded: 64" in out
    loaded = [line for line in out.splitlines() if "KUHR rows loaded" in line]
    assert main(["run"]) == 0  # a second run finds nothing new and changes nothing
    again = capsys.readouterr().out
    assert "KUHR: 0 new deliveries ready" in again and "KUHR files loaded: 64" in again
    assert loaded == [line for line in again.splitlines() if "KUHR rows loaded" in line]
    assert (tmp_path / "data/warehouse.duckdb").exists()
    assert (tmp_path / "data/dagster_home/dagster.yaml").exists()


def test_a_wrong_setting_stops_the_command_with_one_sentence(tmp_path):
    env = {**os.environ, "KPR_ENV": "production", "KPR_PSEUDONYM_KEY": ""}
    proc = subprocess.run([sys.executable, "-m", "kpr_pipeline.cli", "run", "--landing", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "kpr-pipeline: KPR_PSEUDONYM_KEY is required when KPR_ENV=production."


@pytest.mark.parametrize("args, message", [
    (["generate", "--out", "x", "--start", "2017-13"], "YYYY-MM"),
    (["generate", "--out", "x", "--scale", "2"], "--scale"),
])
def test_bad_generator_arguments(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err
