import pytest

from caretrack.core.settings import DEV_SECRET_KEY, Settings, SettingsError


def test_defaults_are_the_embedded_setup():
    settings = Settings.from_env({})
    assert settings.is_sqlite
    assert settings.redis_url is None
    assert settings.origins == {"http://127.0.0.1:8000"}
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.media_mode == "embedded"
    assert settings.care_early_logs == "refuse"
    assert settings.care_late_visit_minutes == 15
    assert Settings.from_env({"CARETRACK_CARE_LATE_VISIT_MINUTES": "20"}).care_late_visit_minutes == 20


def test_the_agency_may_mark_early_logs_instead_of_refusing_them():
    assert Settings.from_env({"CARETRACK_CARE_EARLY_LOGS": "MARK"}).care_early_logs == "mark"
    assert Settings.from_env({"CARETRACK_CARE_EARLY_LOGS": "refuse"}).care_early_logs == "refuse"


def test_the_port_range_and_media_workers_reach_the_relay(tmp_path):
    from caretrack.consultations.service import relay_config

    settings = Settings.from_env({"CARETRACK_RTC_PORT_MIN": "40000", "CARETRACK_RTC_PORT_MAX": "40099",
                                  "CARETRACK_MEDIA_MODE": "workers", "CARETRACK_REDIS_URL": "redis://r:6379/0",
                                  "CARETRACK_DATA_DIR": str(tmp_path)})
    assert relay_config(settings).udp_ports == (40000, 40099)
    assert relay_config(settings.replace(rtc_port_min=None, rtc_port_max=None)).udp_ports is None
    assert settings.media_mode == "workers"
    other = settings.replace(secret_key="another-secret-key-0123")
    assert len(settings.media_ticket_key) == 32 and settings.media_ticket_key != other.media_ticket_key


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CARETRACK_DATABASE_URL": "mysql://db/x"}, "CARETRACK_DATABASE_URL"),
        ({"CARETRACK_DATABASE_URL": "postgres://"}, "CARETRACK_DATABASE_URL"),
        ({"CARETRACK_DATABASE_URL": "postgres://h:port/db"}, "CARETRACK_DATABASE_URL"),
        ({"CARETRACK_REDIS_URL": "http://localhost"}, "CARETRACK_REDIS_URL"),
        ({"CARETRACK_SMTP_PORT": "twenty-five"}, "CARETRACK_SMTP_PORT"),
        ({"CARETRACK_SMTP_PORT": "70000"}, "CARETRACK_SMTP_PORT"),
        ({"CARETRACK_LOG_FORMAT": "xml"}, "CARETRACK_LOG_FORMAT"),
        ({"CARETRACK_ALLOWED_ORIGINS": "not a url"}, "CARETRACK_ALLOWED_ORIGINS"),
        ({"CARETRACK_SMTP_STARTTLS": "maybe"}, "CARETRACK_SMTP_STARTTLS"),
        ({"CARETRACK_PHI_KEYS": "1:c2hvcnQ="}, "CARETRACK_PHI_KEYS"),
        ({"CARETRACK_RTC_ALLOWED_NETWORKS": "10.0.0.0/33"}, "CARETRACK_RTC_ALLOWED_NETWORKS"),
        ({"CARETRACK_RTC_PORT_MIN": "40000"}, "CARETRACK_RTC_PORT_MIN"),
        ({"CARETRACK_MEDIA_MODE": "cluster"}, "CARETRACK_MEDIA_MODE"),
        ({"CARETRACK_MEDIA_MODE": "workers"}, "CARETRACK_REDIS_URL"),
        ({"CARETRACK_CARE_TIME_ZONE": "Europe/Londn"}, "CARETRACK_CARE_TIME_ZONE"),
        ({"CARETRACK_CARE_EARLY_LOGS": "count"}, "CARETRACK_CARE_EARLY_LOGS"),
        ({"CARETRACK_CARE_LATE_VISIT_MINUTES": "0"}, "CARETRACK_CARE_LATE_VISIT_MINUTES"),
        ({"CARETRACK_CARE_LATE_VISIT_MINUTES": "a while"}, "CARETRACK_CARE_LATE_VISIT_MINUTES"),
    ],
)
def test_a_bad_value_names_its_variable(env, named):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert named in str(info.value)


def test_production_refuses_the_default_secret_key():
    with pytest.raises(SettingsError, match="CARETRACK_SECRET_KEY"):
        Settings.from_env({"CARETRACK_ENVIRONMENT": "production"})


def test_production_needs_phi_keys():
    with pytest.raises(SettingsError, match="CARETRACK_PHI_KEYS"):
        Settings.from_env({"CARETRACK_ENVIRONMENT": "production", "CARETRACK_SECRET_KEY": "x" * 40})


def test_postgres_urls_are_normalised_and_passwords_never_echoed():
    settings = Settings.from_env({"CARETRACK_DATABASE_URL": "postgresql://u:pw@db:5432/care"})
    assert settings.database_url == "postgres://u:pw@db:5432/care"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"CARETRACK_DATABASE_URL": "mysql://u:hunter2@db/care"})
    assert "hunter2" not in str(info.value)


def test_origins_include_base_url_and_extra_origins():
    settings = Settings.from_env({
        "CARETRACK_BASE_URL": "https://care.example.org/",
        "CARETRACK_ALLOWED_ORIGINS": "https://app.example.org, https://other.example.org/path",
    })
    assert settings.https
    assert settings.origins == {"https://care.example.org", "https://app.example.org", "https://other.example.org"}


def test_payment_settings_are_validated_and_named():
    with pytest.raises(SettingsError, match="CARETRACK_PAYMENTS_SECRET_KEY"):
        Settings.from_env({"CARETRACK_PAYMENTS_PROVIDER": "stripe"})
    with pytest.raises(SettingsError, match="CARETRACK_PAYMENTS_PROVIDER"):
        Settings.from_env({"CARETRACK_PAYMENTS_PROVIDER": "paypal"})
    assert Settings.from_env({}).payments_demo_topup is True
    production = Settings.from_env({"CARETRACK_ENVIRONMENT": "production", "CARETRACK_SECRET_KEY": "x" * 40,
                                    "CARETRACK_PHI_KEYS": "1:" + "A" * 43 + "="})
    assert production.payments_demo_topup is False
