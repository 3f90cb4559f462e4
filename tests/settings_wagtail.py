"""Settings for the Wagtail integration's tests: the test settings plus Wagtail and its demo.

Run with the ``wagtail`` extra installed: ``pytest tests/contrib/wagtail
--ds=tests.settings_wagtail`` (``make test-wagtail`` does, for each supported Wagtail).
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, MIDDLEWARE

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
