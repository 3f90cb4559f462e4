"""The test URLs plus MEDIA_URL, for the browser tests.

pytest-django's live server serves static files but not media, and ``django.conf.urls.static``
serves nothing unless ``DEBUG`` is on. MEDIA_ROOT is read on each request because every test
gets its own (the ``_media_root`` fixture in ``tests/conftest.py``).
"""

import re

from django.conf import settings
from django.urls import re_path
from django.views.static import serve

from tests.urls import urlpatterns as base_urlpatterns


def media(request, path):
    """Serve a file of the current MEDIA_ROOT."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [
    *base_urlpatterns,
    re_path(rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$", media),
]
