"""One `Settings` object, read from the environment once (`CARETRACK_` prefix).

Every value is validated here, so a bad one stops start-up with a message that names the
variable instead of failing later, deep inside a request.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from caretrack.core import phones
from caretrack.core.clock import zone_names

PREFIX = "CARETRACK_"
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
DEFAULT_DATABASE_URL = "sqlite://var/caretrack.sqlite3"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Settings:
    environment: str = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    base_url: str = "http://127.0.0.1:8000"
    allowed_origins: tuple[str, ...] = ()
    # Reverse proxies whose X-Forwarded-For is believed (IP networks); none by default, so a
    # client cannot choose the address that rate limits and the audit log see.
    trusted_proxies: tuple[str, ...] = ()
    log_format: str = "console"
    log_level: str = "INFO"
    data_dir: Path = Path("var")
    agency_name: str = "CareTrack"
    # Care happens on the client's wall clock: a new package's zone unless the admin picks another.
    care_time_zone: str = "UTC"
    # A task logged done before its window opens (on the package's clock): refused, or recorded
    # marked early and not counted toward the target.
    care_early_logs: str = "refuse"  # or "mark"
    # A visit not checked in this long after its start raises a late-visit alert to the admins.
    care_late_visit_minutes: int = 15
    # Email: without an SMTP host, emails are stored in the database for admins to read.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    mail_from: str = "CareTrack <no-reply@caretrack.invalid>"
    # Phone numbers: a national number (no +country code) is read in this region.
    phone_region: str = "GB"
    # SMS: without a provider ("none"), texts are stored in the database for admins to read.
    sms_provider: str = "none"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    # PHI encryption keys: version -> 32-byte AES key. The highest version encrypts.
    phi_keys: Mapping[int, bytes] = dataclasses.field(default_factory=dict)
    # Sessions
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # Telehealth
    platform_fee_percent: int = 20
    call_window_minutes: int = 15
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_username: str | None = None
    turn_password: str | None = None
    rtc_port_min: int | None = None
    rtc_port_max: int | None = None
    rtc_allowed_networks: tuple[str, ...] = ()
    # Media relay: in each web process ("embedded"), or in `caretrack media` workers that
    # web processes find through Redis ("workers").
    media_mode: str = "embedded"
    # Deferred work (caretrack.core.queue): run in each web process ("inprocess"), or only in
    # `caretrack worker` processes ("workers"). A job's lease is renewed while it runs; a
    # runner that dies loses it after this long, and another runner takes the job over.
    jobs_mode: str = "inprocess"
    job_lease_seconds: int = 60
    # Live updates
    event_retention_days: int = 7
    # Messaging: a message still unread this long after it was sent nudges its recipient.
    message_nudge_minutes: int = 60
    # Payments: the built-in provider (demo top-up) or a Stripe-like hosted checkout.
    payments_provider: str = "builtin"
    payments_demo_topup: bool | None = None  # None: on outside production
    payments_api_base: str = "https://api.stripe.com"
    payments_secret_key: str | None = None
    payments_webhook_secret: str | None = None
    payments_currency: str = "eur"
    payments_cents_per_credit: int = 100
    # Prometheus: /metrics answers only a scraper that sends this bearer token. Unset, it is
    # open outside production and not served in production (route names and counts are
    # reconnaissance an attacker should not get for free).
    metrics_token: str | None = None

    def __post_init__(self) -> None:
        if not self.phi_keys and self.environment != "production":
            object.__setattr__(self, "phi_keys", development_phi_keys(self.secret_key))

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def origins(self) -> frozenset[str]:
        """Origins allowed for WebSocket handshakes and CSRF checks."""
        return frozenset(self.allowed_origins) | {_origin_of(self.base_url)}

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        environment = reader.choice("ENVIRONMENT", ("development", "production", "test"), "development")
        base_url = reader.url("BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https"))
        secret_key = reader.text("SECRET_KEY", DEV_SECRET_KEY)
        if environment == "production" and secret_key == DEV_SECRET_KEY:
            raise SettingsError(
                f"{PREFIX}SECRET_KEY is not set, and the development default is refused in "
                "production: set it to a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')."
            )
        if len(secret_key) < 16:
            raise SettingsError(f"{PREFIX}SECRET_KEY is too short: use at least 16 characters.")
        settings = cls(
            environment=environment,
            database_url=reader.database_url("DATABASE_URL", DEFAULT_DATABASE_URL),
            redis_url=reader.url_or_none("REDIS_URL", schemes=("redis", "rediss", "unix")),
            secret_key=secret_key,
            base_url=base_url.rstrip("/"),
            allowed_origins=tuple(
                _origin_of(o, f"{PREFIX}ALLOWED_ORIGINS") for o in reader.csv("ALLOWED_ORIGINS")
            ),
            trusted_proxies=tuple(reader.networks("TRUSTED_PROXIES")),
            log_format=reader.choice("LOG_FORMAT", ("console", "json"), "console"),
            log_level=reader.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True),
            data_dir=Path(reader.text("DATA_DIR", "var")),
            agency_name=reader.text("AGENCY_NAME", "CareTrack"),
            care_time_zone=reader.time_zone("CARE_TIME_ZONE", "UTC"),
            care_early_logs=reader.choice("CARE_EARLY_LOGS", ("refuse", "mark"), "refuse"),
            care_late_visit_minutes=reader.integer("CARE_LATE_VISIT_MINUTES", 15, minimum=1, maximum=240),
            smtp_host=reader.text_or_none("SMTP_HOST"),
            smtp_port=reader.integer("SMTP_PORT", 25, minimum=1, maximum=65535),
            smtp_username=reader.text_or_none("SMTP_USERNAME"),
            smtp_password=reader.text_or_none("SMTP_PASSWORD"),
            smtp_starttls=reader.boolean("SMTP_STARTTLS", False),
            smtp_tls=reader.boolean("SMTP_TLS", False),
            mail_from=reader.text("MAIL_FROM", "CareTrack <no-reply@caretrack.invalid>"),
            phone_region=reader.region("PHONE_REGION", "GB"),
            sms_provider=reader.choice("SMS_PROVIDER", ("none", "twilio"), "none"),
            twilio_account_sid=reader.text_or_none("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=reader.text_or_none("TWILIO_AUTH_TOKEN"),
            twilio_from=reader.text_or_none("TWILIO_FROM"),
            twilio_api_base=reader.url(
                "TWILIO_API_BASE", "https://api.twilio.com", schemes=("http", "https")
            ).rstrip("/"),
            phi_keys=reader.phi_keys("PHI_KEYS", secret_key, environment),
            session_idle_minutes=reader.integer("SESSION_IDLE_MINUTES", 30, minimum=1),
            session_absolute_hours=reader.integer("SESSION_ABSOLUTE_HOURS", 12, minimum=1),
            platform_fee_percent=reader.integer("PLATFORM_FEE_PERCENT", 20, minimum=0, maximum=100),
            call_window_minutes=reader.integer("CALL_WINDOW_MINUTES", 15, minimum=0),
            stun_urls=tuple(reader.csv("STUN_URLS")),
            turn_urls=tuple(reader.csv("TURN_URLS")),
            turn_username=reader.text_or_none("TURN_USERNAME"),
            turn_password=reader.text_or_none("TURN_PASSWORD"),
            rtc_port_min=reader.integer_or_none("RTC_PORT_MIN", minimum=1024, maximum=65535),
            rtc_port_max=reader.integer_or_none("RTC_PORT_MAX", minimum=1024, maximum=65535),
            rtc_allowed_networks=tuple(reader.networks("RTC_ALLOWED_NETWORKS")),
            media_mode=reader.choice("MEDIA_MODE", ("embedded", "workers"), "embedded"),
            jobs_mode=reader.choice("JOBS_MODE", ("inprocess", "workers"), "inprocess"),
            job_lease_seconds=reader.integer("JOB_LEASE_SECONDS", 60, minimum=2, maximum=3600),
            event_retention_days=reader.integer("EVENT_RETENTION_DAYS", 7, minimum=1),
            message_nudge_minutes=reader.integer("MESSAGE_NUDGE_MINUTES", 60, minimum=1),
            payments_provider=reader.choice("PAYMENTS_PROVIDER", ("builtin", "stripe"), "builtin"),
            payments_demo_topup=reader.boolean("PAYMENTS_DEMO_TOPUP", environment != "production"),
            payments_api_base=reader.url(
                "PAYMENTS_API_BASE", "https://api.stripe.com", schemes=("http", "https")
            ).rstrip("/"),
            payments_secret_key=reader.text_or_none("PAYMENTS_SECRET_KEY"),
            payments_webhook_secret=reader.text_or_none("PAYMENTS_WEBHOOK_SECRET"),
            payments_currency=reader.text("PAYMENTS_CURRENCY", "eur").lower(),
            payments_cents_per_credit=reader.integer("PAYMENTS_CENTS_PER_CREDIT", 100, minimum=1),
            metrics_token=reader.text_or_none("METRICS_TOKEN"),
        )
        if settings.metrics_token is not None and len(settings.metrics_token) < 16:
            raise SettingsError(
                f"{PREFIX}METRICS_TOKEN is too short: use at least 16 characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        if settings.payments_provider == "stripe" and not (
            settings.payments_secret_key and settings.payments_webhook_secret
        ):
            raise SettingsError(
                f"{PREFIX}PAYMENTS_PROVIDER=stripe needs {PREFIX}PAYMENTS_SECRET_KEY and "
                f"{PREFIX}PAYMENTS_WEBHOOK_SECRET."
            )
        if settings.sms_provider == "twilio" and not (
            settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from
        ):
            raise SettingsError(
                f"{PREFIX}SMS_PROVIDER=twilio needs {PREFIX}TWILIO_ACCOUNT_SID, {PREFIX}TWILIO_AUTH_TOKEN "
                f"and {PREFIX}TWILIO_FROM (the number or sender id texts come from)."
            )
        if (settings.rtc_port_min is None) != (settings.rtc_port_max is None) or (
            settings.rtc_port_min is not None and settings.rtc_port_min > settings.rtc_port_max
        ):
            raise SettingsError(
                f"{PREFIX}RTC_PORT_MIN and {PREFIX}RTC_PORT_MAX must be set together, min <= max."
            )
        if settings.media_mode == "workers" and not settings.redis_url:
            raise SettingsError(
                f"{PREFIX}MEDIA_MODE=workers needs {PREFIX}REDIS_URL: web processes find the media "
                "worker hosting each consultation through Redis."
            )
        return settings

    @property
    def media_ticket_key(self) -> bytes:
        """The key web processes sign join tickets with for media workers."""
        import hashlib
        import hmac

        return hmac.new(self.secret_key.encode(), b"caretrack media tickets v1", hashlib.sha256).digest()


def development_phi_keys(secret_key: str) -> dict[int, bytes]:
    """Outside production, one PHI key derived from the secret key, so the embedded default
    works without setup."""
    import hashlib

    return {1: hashlib.sha256(b"caretrack-phi-v1:" + secret_key.encode()).digest()}


def base_url_is_set(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the operator chose the public URL (a reverse proxy, a domain) rather than the default."""
    return bool((os.environ if environ is None else environ).get(f"{PREFIX}BASE_URL", "").strip())


def local_base_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens for a server bound to `host:port`: a wildcard
    bind (0.0.0.0, ::) answers on loopback too, and 127.0.0.1 is what the default spells."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _origin_of(url: str, name: str = f"{PREFIX}BASE_URL") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} has '{url}', which is not an http(s) origin.")
    return f"{parts.scheme}://{parts.netloc}"


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, key: str) -> str | None:
        value = self.env.get(PREFIX + key)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, key: str, default: str) -> str:
        return self._raw(key) or default

    def text_or_none(self, key: str) -> str | None:
        return self._raw(key)

    def choice(self, key: str, options: tuple[str, ...], default: str, upper: bool = False) -> str:
        value = self._raw(key)
        if value is None:
            return default
        value = value.upper() if upper else value.lower()
        if value not in options:
            raise SettingsError(
                f"{PREFIX}{key} has '{value}'; expected one of: {', '.join(options)}."
            )
        return value

    def time_zone(self, key: str, default: str) -> str:
        value = self._raw(key) or default
        if value not in zone_names():
            raise SettingsError(
                f"{PREFIX}{key} has '{value}', which is not an IANA time zone; use a name such as "
                "Europe/London or America/New_York."
            )
        return value

    def region(self, key: str, default: str) -> str:
        value = (self._raw(key) or default).upper()
        if value not in phones.REGIONS:
            raise SettingsError(
                f"{PREFIX}{key} has '{value}', which is not a region phone numbers know; use a "
                "two-letter country code such as GB, US or IE."
            )
        return value

    def integer_or_none(self, key: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self._raw(key)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{PREFIX}{key} has '{value}', which is not a whole number.") from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise SettingsError(
                f"{PREFIX}{key} has {number}; it must be between {minimum} and {maximum}."
            )
        return number

    def integer(self, key: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        number = self.integer_or_none(key, minimum, maximum)
        return default if number is None else number

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{key} has '{value}'; expected true or false.")

    def csv(self, key: str) -> list[str]:
        value = self._raw(key)
        return [item.strip() for item in value.split(",") if item.strip()] if value else []

    def url(self, key: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self._raw(key) or default
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise SettingsError(
                f"{PREFIX}{key} has '{_redact(value)}'; expected a URL starting with "
                f"{' or '.join(s + '://' for s in schemes)}."
            )
        return value

    def url_or_none(self, key: str, schemes: tuple[str, ...]) -> str | None:
        if self._raw(key) is None:
            return None
        return self.url(key, "", schemes)

    def database_url(self, key: str, default: str) -> str:
        value = self._raw(key) or default
        parts = urlsplit(value)
        if parts.scheme == "sqlite":
            path = value[len("sqlite://"):]
            if not path:
                raise SettingsError(f"{PREFIX}{key} has '{value}', which names no SQLite file.")
            return value
        if parts.scheme in ("postgres", "postgresql", "asyncpg"):
            if not parts.hostname or not parts.path.strip("/"):
                raise SettingsError(
                    f"{PREFIX}{key} has '{_redact(value)}'; a PostgreSQL URL needs a host and a "
                    "database name, as in postgres://user@127.0.0.1:5432/caretrack."
                )
            try:
                parts.port  # noqa: B018 - raises on a malformed port
            except ValueError:
                raise SettingsError(f"{PREFIX}{key} has '{_redact(value)}', whose port is not a number.") from None
            return "postgres" + value[len(parts.scheme):]
        raise SettingsError(
            f"{PREFIX}{key} has '{_redact(value)}'; expected a sqlite:// or postgres:// URL."
        )

    def networks(self, key: str) -> list[str]:
        result = []
        for item in self.csv(key):
            try:
                result.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise SettingsError(f"{PREFIX}{key} has '{item}', which is not an IP network.") from None
        return result

    def phi_keys(self, key: str, secret_key: str, environment: str) -> dict[int, bytes]:
        """`1:<base64 32 bytes>,2:<base64 32 bytes>`; unset derives one key from SECRET_KEY
        outside production, so the embedded default works without setup."""
        value = self._raw(key)
        if value is None:
            if environment == "production":
                raise SettingsError(
                    f"{PREFIX}{key} is not set: production needs at least one PHI key, as "
                    f"'1:<base64 of 32 random bytes>'."
                )
            return development_phi_keys(secret_key)
        keys: dict[int, bytes] = {}
        for item in value.split(","):
            version, _, encoded = item.strip().partition(":")
            try:
                raw = base64.b64decode(encoded, validate=True)
                number = int(version)
            except ValueError:
                raise SettingsError(
                    f"{PREFIX}{key} has an entry '{version}:…' that is not 'VERSION:BASE64'."
                ) from None
            if len(raw) != 32 or number < 1:
                raise SettingsError(
                    f"{PREFIX}{key} entry {version} must be a positive version and 32 bytes of key."
                )
            keys[number] = raw
        return keys


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
