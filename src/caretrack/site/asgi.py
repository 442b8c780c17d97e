"""The ASGI entry point for hypercorn workers: `caretrack.site.asgi:app`."""

from caretrack.core.logs import configure
from caretrack.core.settings import Settings
from caretrack.site.app import create_app

settings = Settings.from_env()
configure(settings.log_format, settings.log_level)
app = create_app(settings)
