"""Settings of the example project: SQLite, the offline placeholder provider, no key needed.

Every deployment-sensitive value comes from an environment variable with a safe local default,
so ``python example_project/manage.py migrate`` works on a fresh checkout without a network.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-imagegen-example-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "imagegen",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH") or BASE_DIR / "db.sqlite3",
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("DJANGO_MEDIA_ROOT") or BASE_DIR / "media"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The offline placeholder provider paints images locally: no network, no key, no cost.
# Add aliases for real providers here (see the README) and point a preset at them.
IMAGEGEN = {
    "DEFAULT_PROVIDER": "default",
    "PROVIDERS": {
        "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
    },
    "TASK_RUNNER": os.environ.get("IMAGEGEN_TASK_RUNNER", "immediate"),
}

# Celery, used with IMAGEGEN_TASK_RUNNER=celery (start a worker with `make worker`).
# See docs/deployment.md for what each of these does.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than a job's hard time limit plus its longest retry delay, or Redis hands a job
    # that is still running to a second worker.
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "7200")),
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 60.0
CELERY_BEAT_SCHEDULE = {
    "imagegen-sweep-jobs": {"task": "imagegen.sweep_jobs", "schedule": 300.0},
    # Daily: what the configured providers still serve (problems are logged on imagegen.live).
    "imagegen-check-models": {"task": "imagegen.check_models", "schedule": 86400.0},
}

# The shared per-provider limits (IMAGEGEN["TASK_OPTIONS"]["RATE_LIMITS"]) need a cache all
# workers share: Redis when IMAGEGEN_CACHE_URL is set, else this process's memory.
if os.environ.get("IMAGEGEN_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["IMAGEGEN_CACHE_URL"],
        }
    }
