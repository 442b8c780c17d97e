"""Package layout: `caretrack` lives in src/, `signalling` and `media` at the top level, and
the top-level `migrations/` and `web/` folders ship inside the package as
`caretrack.migrations` and `caretrack.web` (templates and static files included)."""

from setuptools import find_namespace_packages, find_packages, setup

setup(
    package_dir={
        "": "src",
        "signalling": "signalling",
        "media": "media",
        "caretrack.migrations": "migrations",
        "caretrack.web": "web",
    },
    packages=[
        *find_packages("src"),
        *find_packages(".", include=["signalling", "signalling.*", "media", "media.*"]),
        "caretrack.migrations",
        "caretrack.web",
        # Template and asset folders are data, but setuptools sees importable folders and warns
        # unless they are listed too.
        *("caretrack.web." + name for name in find_namespace_packages("web")),
    ],
    package_data={"caretrack.web": ["templates/**/*", "static/**/*"], "caretrack.accounts": ["*.txt"]},
    include_package_data=True,
)
