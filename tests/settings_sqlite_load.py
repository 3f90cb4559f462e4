"""Settings of the SQLite load test: a database file several processes share, and a site cap.

SQLite takes one writer at a time. ``transaction_mode = "IMMEDIATE"`` makes each transaction
take the write lock when it starts, so a reservation never has to upgrade a read lock while
another process writes (which SQLite answers with "database is locked" at once); ``timeout``
lets writers queue for it.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("IMAGEGEN_LOAD_DB", "load.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
        "TEST": {"NAME": os.environ.get("IMAGEGEN_LOAD_DB", "load.sqlite3")},
    }
}

IMAGEGEN = {
    "DEFAULT_PROVIDER": "it",
    "PROVIDERS": {
        "it": {"BACKEND": "imagegen.providers.locmem.LocmemProvider", "OPTIONS": {"cost": "0.05"}}
    },
    "PRICES": {"locmem": {"per_image": "0.05"}},
    "BUDGETS": {"SITE_MONTHLY": os.environ.get("IMAGEGEN_IT_BUDGET", "0.20")},
    "DERIVATIVE_WIDTHS": [],
}
