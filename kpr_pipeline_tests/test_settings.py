import pytest

from kpr_pipeline.settings import DEVELOPMENT_PSEUDONYM_KEY, Settings, SettingsError


def test_defaults_are_the_spec_defaults():
    s = Settings.from_env({})
    assert s.env == "development"
    assert str(s.landing_dir) == "data/landing"
    assert s.warehouse_url == "duckdb:///data/warehouse.duckdb"
    assert str(s.output_dir) == "data/output"
    assert s.pseudonym_key == DEVELOPMENT_PSEUDONYM_KEY and s.development_key
    assert s.iplos_pseudonym_key is None
    assert s.kuhr_stale_days == 3 and s.alert_webhook_url is None


@pytest.mark.parametrize(
    "env, names",
    [
        ({"KPR_ENV": "staging"}, "KPR_ENV"),
        ({"KPR_ENV": "production"}, "KPR_PSEUDONYM_KEY"),
        ({"KPR_ENV": "production", "KPR_PSEUDONYM_KEY": "short"}, "KPR_PSEUDONYM_KEY"),
        ({"KPR_ENV": "production", "KPR_PSEUDONYM_KEY": DEVELOPMENT_PSEUDONYM_KEY}, "KPR_PSEUDONYM_KEY"),
        ({"KPR_WAREHOUSE_URL": "mysql://x/y"}, "KPR_WAREHOUSE_URL"),
        ({"KPR_REPORT_SETTLE_SECONDS": "soon"}, "KPR_REPORT_SETTLE_SECONDS"),
        ({"KPR_REPORT_SETTLE_SECONDS": "-1"}, "KPR_REPORT_SETTLE_SECONDS"),
        ({"KPR_RECONCILIATION_MATCH_THRESHOLD": "95%"}, "KPR_RECONCILIATION_MATCH_THRESHOLD"),
        ({"KPR_SPLIT_POLICY": "average"}, "KPR_SPLIT_POLICY"),
        ({"KPR_KUHR_STALE_DAYS": "0"}, "KPR_KUHR_STALE_DAYS"),
        ({"KPR_KUHR_STALE_DAYS": "2.5"}, "KPR_KUHR_STALE_DAYS"),
        ({"KPR_ALERT_WEBHOOK_URL": "ftp://alerts.example/hook"}, "KPR_ALERT_WEBHOOK_URL"),
    ],
)
def test_a_wrong_setting_fails_with_one_sentence_naming_it(env, names):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    message = str(err.value)
    assert names in message
    assert message.count("\n") == 0 and message.endswith(".")


def test_production_accepts_a_long_key_and_never_shows_it():
    key = "k" * 40
    s = Settings.from_env({"KPR_ENV": "production", "KPR_PSEUDONYM_KEY": key,
                           "KPR_WAREHOUSE_URL": "postgresql://kpr:secret@db/kpr",
                           "KPR_ALERT_WEBHOOK_URL": "https://hooks.example/T0/tokensecret"})
    assert s.production and not s.development_key
    described = str(s.describe())
    assert key not in described and "secret" not in described
    assert described.count("'set'") >= 2  # the key and the webhook URL: only that they are set


def test_bare_postgresql_url_uses_psycopg2():
    from kpr_pipeline.warehouse.engine import normalise_url

    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
