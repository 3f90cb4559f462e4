"""Settings for the Wagtail integration's tests: the test settings plus Wagtail and its demo.

Run with the ``wagtail`` extra installed: ``pytest tests/contrib/wagtail
--ds=tests.settings_wagtail`` (``make test-wagtail`` does, for each supported Wagtail).
"""

import os
import tempfile

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, MIDDLEWARE

# The browser tests' live server answers from several threads, and each request's follow-up
# job (derived files) runs after its response, while the browser goes on. Django gives every
# thread of a live server the same connection to an in-memory database, which SQLite does not
# survive; a database file gives each thread its own, and WAL with immediate transactions lets
# them take turns.
_DATABASE_DIR = os.environ.get("IMAGEGEN_TEST_DB_DIR") or tempfile.mkdtemp(prefix="imagegen-db-")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_DATABASE_DIR, "wagtail.sqlite3"),
        "TEST": {"NAME": os.path.join(_DATABASE_DIR, "test-wagtail.sqlite3")},
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}

# imagegen.contrib.wagtail comes before wagtail.images: its chooser template adds a tab.
INSTALLED_APPS = [
    *INSTALLED_APPS,
    "imagegen.contrib.wagtail",
    "wagtail_demo",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
]
MIDDLEWARE = [*MIDDLEWARE, "django.middleware.clickjacking.XFrameOptionsMiddleware"]
ROOT_URLCONF = "tests.urls_wagtail"
WAGTAIL_SITE_NAME = "imagegen tests"
WAGTAILADMIN_BASE_URL = "http://testserver"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAIL_GRAVATAR_PROVIDER_URL = None  # no requests outside the test server
WAGTAIL_ENABLE_UPDATE_CHECK = False  # the dashboard would fetch the latest version
