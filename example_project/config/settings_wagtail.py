"""Settings of the example project's Wagtail site: the same project, with Wagtail on top.

``make demo-wagtail`` runs it (``DJANGO_SETTINGS_MODULE=config.settings_wagtail``): SQLite in
``db-wagtail.sqlite3``, the offline placeholder provider, the Wagtail admin at /cms/. It needs
the ``wagtail`` extra (``pip install "django-imagegen[wagtail]"``).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, INSTALLED_APPS, MIDDLEWARE

# imagegen.contrib.wagtail comes before wagtail.images: its chooser template adds the
# "Generate" tab.
INSTALLED_APPS = [
    *INSTALLED_APPS,
    "imagegen.contrib.wagtail",
    "wagtail_demo",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
]
MIDDLEWARE = [*MIDDLEWARE, "wagtail.contrib.redirects.middleware.RedirectMiddleware"]
ROOT_URLCONF = "config.urls_wagtail"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH") or BASE_DIR / "db-wagtail.sqlite3",
        # SQLite as a served site wants it: the write-ahead log, so readers never wait for a
        # writer and a commit needs no fsync of the database file; transactions that take the
        # write lock when they begin, so the server's threads and imagegen's background
        # thread wait their turn instead of failing with "database is locked".
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}

WAGTAIL_SITE_NAME = "imagegen Wagtail demo"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://127.0.0.1:8000")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000
# The demo runs offline: no version check, no Gravatar.
WAGTAIL_ENABLE_UPDATE_CHECK = False
WAGTAIL_GRAVATAR_PROVIDER_URL = None
