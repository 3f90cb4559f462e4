"""Settings shared by the integration tests and the Celery worker they start.

The worker gets the test database's name, the media directory and the Redis names of the run
through environment variables (``IMAGEGEN_IT_*``), set by tests/integration/conftest.py.
"""

import os

from tests.settings_postgres import *  # noqa: F403
from tests.settings_postgres import DATABASES

REDIS = os.environ.get("IMAGEGEN_IT_REDIS", "redis://127.0.0.1:6379/11")
RUN = os.environ.get("IMAGEGEN_IT_RUN", "local")

if os.environ.get("IMAGEGEN_IT_DB"):
    DATABASES["default"]["NAME"] = os.environ["IMAGEGEN_IT_DB"]

# The shared limits live in Redis, like in production.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS,
        "KEY_PREFIX": f"it-{RUN}",
    }
}

IMAGEGEN = {
    "DEFAULT_PROVIDER": "it",
    "PROVIDERS": {
        "it": {"BACKEND": "tests.integration.provider.ScriptedProvider"},
        "limited": {"BACKEND": "tests.integration.provider.ScriptedProvider"},
    },
    "TASK_RUNNER": "celery",
    "DERIVATIVE_WIDTHS": [],
    "TASK_OPTIONS": {
        "LEASE": 3,
        "RETRY_BACKOFF": 0.5,
        "RETRY_BACKOFF_MAX": 4,
        "SOFT_TIME_LIMIT": 40,
        "TIME_LIMIT": 50,
        "RATE_LIMITS": {"limited": {"CONCURRENCY": 1}},
    },
}

# The budget tests (test_budgets_under_load.py) start callers with a site cap and a price.
if os.environ.get("IMAGEGEN_IT_BUDGET"):
    IMAGEGEN["BUDGETS"] = {"SITE_MONTHLY": os.environ["IMAGEGEN_IT_BUDGET"]}
    IMAGEGEN["PRICES"] = {"locmem": {"per_image": "0.05"}}
    IMAGEGEN["TASK_RUNNER"] = os.environ.get("IMAGEGEN_IT_RUNNER", "celery")
