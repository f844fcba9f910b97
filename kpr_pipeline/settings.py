"""The environment settings of spec/interfaces.md, read once and validated at start.

A wrong setting fails with one sentence that names it (``SettingsError``), never with a
stack trace from deep inside a library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

#: The documented development key. Output made with it is marked as such (``Settings.development_key``).
DEVELOPMENT_PSEUDONYM_KEY = "kpr-development-pseudonym-key-not-for-production"
MIN_PRODUCTION_KEY_BYTES = 32
ENVIRONMENTS = ("development", "test", "production")
#: How split municipalities are mapped to current borders (spec/statistics.md, Geography).
SPLIT_POLICIES = ("weight", "rollup", "suppress")


class SettingsError(ValueError):
    """A setting is missing or wrong; the message is one sentence naming the setting."""


@dataclass(frozen=True)
class Settings:
    env: str
    landing_dir: Path
    warehouse_url: str
    output_dir: Path
    pseudonym_key: str = DEVELOPMENT_PSEUDONYM_KEY
    iplos_pseudonym_key: str | None = None
    report_settle_seconds: float = 30.0
    reconciliation_match_threshold: float = 0.95
    split_policy: str = "weight"
    suppression_threshold: int = 5
    alert_webhook_url: str | None = None
    kuhr_stale_days: int = 3

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def development_key(self) -> bool:
        """True when pseudonyms are made with the public development key (never in production)."""
        return self.pseudonym_key == DEVELOPMENT_PSEUDONYM_KEY

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        e = os.environ if environ is None else environ
        env = e.get("KPR_ENV", "development").strip() or "development"
        if env not in ENVIRONMENTS:
            raise SettingsError(f"KPR_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}.")
        production = env == "production"
        key = e.get("KPR_PSEUDONYM_KEY") or None
        if production:
            if key is None:
                raise SettingsError("KPR_PSEUDONYM_KEY is required when KPR_ENV=production.")
            if key == DEVELOPMENT_PSEUDONYM_KEY:
                raise SettingsError("KPR_PSEUDONYM_KEY must not be the development key when KPR_ENV=production.")
            if len(key.encode("utf-8")) < MIN_PRODUCTION_KEY_BYTES:
                raise SettingsError(
                    f"KPR_PSEUDONYM_KEY must be at least {MIN_PRODUCTION_KEY_BYTES} bytes when KPR_ENV=production."
                )
        url = (e.get("KPR_WAREHOUSE_URL") or "duckdb:///data/warehouse.duckdb").strip()
        if not url.startswith(("duckdb://", "postgresql://", "postgresql+psycopg2://", "postgres://")):
            raise SettingsError(
                "KPR_WAREHOUSE_URL must be a duckdb:/// or postgresql:// SQLAlchemy URL, "
                f"not one starting {url.split(':', 1)[0]!r}."
            )
        settle_seconds = _number(e, "KPR_REPORT_SETTLE_SECONDS", 30.0, 86_400, "a number of seconds from 0 to 86400")
        match_threshold = _number(e, "KPR_RECONCILIATION_MATCH_THRESHOLD", 0.95, 1.0, "a share from 0 to 1")
        threshold = _number(e, "KPR_SUPPRESSION_THRESHOLD", 5, 1000, "a whole number of persons from 1 to 1000")
        if threshold != int(threshold) or threshold < 1:
            raise SettingsError("KPR_SUPPRESSION_THRESHOLD must be a whole number of persons from 1 to 1000.")
        stale_days = _number(e, "KPR_KUHR_STALE_DAYS", 3, 365, "a whole number of days from 1 to 365")
        if stale_days != int(stale_days) or stale_days < 1:
            raise SettingsError("KPR_KUHR_STALE_DAYS must be a whole number of days from 1 to 365.")
        webhook = (e.get("KPR_ALERT_WEBHOOK_URL") or "").strip() or None
        if webhook and not webhook.startswith(("http://", "https://")):
            raise SettingsError("KPR_ALERT_WEBHOOK_URL must be an http:// or https:// URL.")
        split_policy = (e.get("KPR_SPLIT_POLICY") or "weight").strip()
        if split_policy not in SPLIT_POLICIES:
            raise SettingsError(f"KPR_SPLIT_POLICY must be one of {', '.join(SPLIT_POLICIES)}, not {split_policy!r}.")
        return cls(
            env=env,
            landing_dir=Path(e.get("KPR_LANDING_DIR") or "data/landing"),
            warehouse_url=url,
            output_dir=Path(e.get("KPR_OUTPUT_DIR") or "data/output"),
            pseudonym_key=key or DEVELOPMENT_PSEUDONYM_KEY,
            iplos_pseudonym_key=e.get("IPLOS_PSEUDONYM_KEY") or None,
            report_settle_seconds=settle_seconds,
            reconciliation_match_threshold=match_threshold,
            split_policy=split_policy,
            suppression_threshold=int(threshold),
            alert_webhook_url=webhook,
            kuhr_stale_days=int(stale_days),
        )

    def describe(self) -> dict[str, str]:
        """Settings for logs and metadata: never a secret, only whether it is set."""
        return {
            "KPR_ENV": self.env,
            "KPR_LANDING_DIR": str(self.landing_dir),
            "KPR_WAREHOUSE_URL": redact_url(self.warehouse_url),
            "KPR_OUTPUT_DIR": str(self.output_dir),
            "KPR_PSEUDONYM_KEY": "development key" if self.development_key else "set",
            "IPLOS_PSEUDONYM_KEY": "set" if self.iplos_pseudonym_key else "not set",
            "KPR_REPORT_SETTLE_SECONDS": f"{self.report_settle_seconds:g}",
            "KPR_RECONCILIATION_MATCH_THRESHOLD": f"{self.reconciliation_match_threshold:g}",
            "KPR_SPLIT_POLICY": self.split_policy,
            "KPR_SUPPRESSION_THRESHOLD": str(self.suppression_threshold),
            # a webhook URL often carries its token: only whether it is set
            "KPR_ALERT_WEBHOOK_URL": "set" if self.alert_webhook_url else "not set",
            "KPR_KUHR_STALE_DAYS": str(self.kuhr_stale_days),
        }


def _number(environ: Mapping[str, str], name: str, default: float, highest: float, what: str) -> float:
    """A number setting from 0 to ``highest``; anything else is one sentence naming the setting."""
    text = (environ.get(name) or str(default)).strip()
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= highest:
        raise SettingsError(f"{name} must be {what}, not {text!r}.")
    return value


def redact_url(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is reported by the warehouse layer
        return url.split("@")[-1]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()
