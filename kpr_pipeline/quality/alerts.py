"""Alerts: a failed run or a failed check becomes a row in ``alerts``, a log line, and (when
``KPR_ALERT_WEBHOOK_URL`` is set) a JSON message posted to the webhook.

The row comes first and is the record: a webhook that is down never loses an alert, and its outcome
is noted beside it (``webhook_status``). ``source_key`` makes recording idempotent, so a sensor tick
that is repeated after an interruption does not alert twice. Messages are masked: any run of 11
digits is replaced before anything is stored or sent, whatever the exception said.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa

from kpr_pipeline.domain.identifiers import ELEVEN_DIGITS
from kpr_pipeline.warehouse import Warehouse

WEBHOOK_TIMEOUT_SECONDS = 10
MESSAGE_LIMIT = 2000


def mask(text: str) -> str:
    """``text`` with every run of exactly 11 digits replaced (an identifier must never leave in an alert)."""
    return ELEVEN_DIGITS.sub("[11 digits removed]", text)[:MESSAGE_LIMIT]


@dataclass(frozen=True)
class Alert:
    source_key: str  # run:<run id> or check:<event storage id>
    kind: str  # run_failure, check_failure, check_warning
    severity: str  # ERROR or WARN
    subject: str  # the job, or asset/check
    message: str
    partition: str | None = None
    run_id: str | None = None
    raised_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def payload(self) -> dict:
        """The webhook's JSON body."""
        body = asdict(self)
        body["raised_at"] = self.raised_at.isoformat()
        return {"source": "kpr-pipeline", **body}


def post_webhook(url: str, payload: dict) -> str:
    """POST ``payload`` as JSON; ``delivered`` or ``failed: <why>`` (never raises: alerts must not fail runs)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "kpr-pipeline"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            return "delivered" if 200 <= response.status < 300 else f"failed: HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"failed: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"failed: {type(exc).__name__}"


def record(warehouse: Warehouse, alert: Alert, webhook_url: str | None, log=lambda _m: None) -> bool:
    """Store ``alert`` unless its ``source_key`` is already stored, log it, post it; True when new."""
    alert = Alert(**{**asdict(alert), "message": mask(alert.message), "subject": mask(alert.subject)})
    with warehouse.begin() as conn:
        seen = conn.execute(sa.text("SELECT COUNT(*) FROM alerts WHERE source_key = :k"),
                            {"k": alert.source_key}).all()[0][0]
        if seen:
            return False
        row = {**asdict(alert), "webhook_status": "not_configured"}
        conn.execute(sa.text(f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row)
    where = f" [{alert.partition}]" if alert.partition else ""
    log(f"ALERT {alert.severity} {alert.kind}: {alert.subject}{where}: {alert.message}")
    if webhook_url:
        status = post_webhook(webhook_url, alert.payload())
        with warehouse.begin() as conn:
            conn.execute(sa.text("UPDATE alerts SET webhook_status = :s WHERE source_key = :k"),
                         {"s": status, "k": alert.source_key})
        if status != "delivered":
            log(f"ALERT webhook {status} for {alert.source_key}")
    return True
