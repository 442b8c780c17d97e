"""The ASGI entry point for hypercorn workers: `caretrack.asgi:app`."""

from caretrack.app import create_app
from caretrack.logs import configure
from caretrack.settings import Settings

settings = Settings.from_env()
configure(settings.log_format, settings.log_level)
app = create_app(settings)
