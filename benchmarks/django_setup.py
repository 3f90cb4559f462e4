"""Configure a throwaway Django project for benchmark scripts (SQLite file, temp media)."""

from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup(*, admin_urlconf: str | None = None, database: dict | None = None, **imagegen) -> str:
    """Configure settings, migrate a fresh database and return the temporary directory.

    ``database`` replaces the SQLite file, which has the example project's options (a
    ``DATABASES["default"]`` dict, such as a private PostgreSQL database the script created).

    With ``admin_urlconf`` (a module name), the project also gets what the admin needs to serve
    pages through the test client: the admin, sessions, messages and static files apps, their
    middleware and context processors, and that module as ``ROOT_URLCONF``.
    """
    sys.path.insert(0, ROOT)
    import django
    from django.conf import settings

    workdir = tempfile.mkdtemp(prefix="imagegen-bench-")
    apps = ["django.contrib.auth", "django.contrib.contenttypes", "imagegen", "tests.testapp"]
    templates: dict = {"BACKEND": "django.template.backends.django.DjangoTemplates"}
    storages: dict = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    extra: dict = {}
    if admin_urlconf is not None:
        apps = [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "imagegen",
            "tests.testapp",
        ]
        templates["APP_DIRS"] = True
        templates["OPTIONS"] = {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        }
        storages["staticfiles"] = {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        }
        extra = {
            "ROOT_URLCONF": admin_urlconf,
            "ALLOWED_HOSTS": ["*"],
            "STATIC_URL": "/static/",
            "MIDDLEWARE": [
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
            ],
        }
    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=apps,
        DATABASES={
            "default": database
            or {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(workdir, "bench.sqlite3"),
                # The example project's options (example_project/config/settings.py).
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                    "transaction_mode": "IMMEDIATE",
                },
            }
        },
        MEDIA_ROOT=os.path.join(workdir, "media"),
        STORAGES=storages,
        TEMPLATES=[templates],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        IMAGEGEN=imagegen,
        **extra,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return workdir
