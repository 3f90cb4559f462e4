"""The test settings on PostgreSQL (127.0.0.1:5432, database ``test``, trust auth)."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("IMAGEGEN_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("IMAGEGEN_PG_PORT", "5432"),
        "NAME": os.environ.get("IMAGEGEN_PG_NAME", "test"),
        "USER": os.environ.get("IMAGEGEN_PG_USER", "postgres"),
        # Separate checkouts running at once each name their own test database.
        "TEST": {"NAME": os.environ.get("IMAGEGEN_PG_TEST_NAME", "test_imagegen")},
    }
}
