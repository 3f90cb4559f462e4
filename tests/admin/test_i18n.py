"""The admin pages and the widget's script strings in German (the shipped translation)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.admin import helpers

pytestmark = pytest.mark.django_db


@pytest.fixture
def german(settings):
    settings.LANGUAGE_CODE = "de"
    settings.USE_I18N = True


def test_the_confirmation_page_speaks_german(admin_client, german, articles):
    page = admin_client.post(
        "/admin/testapp/article/",
        {
            "action": "generate_images",
            helpers.ACTION_CHECKBOX_NAME: [str(a.pk) for a in articles],
            "index": "0",
        },
    )

    html = page.content.decode()
    assert "Schätzung aktualisieren" in html
    assert "Bilder pro Objekt" in html
    assert "Geschätzte Summe:" in html


def test_the_widget_and_its_script_strings_speak_german(admin_client, german, articles):
    page = admin_client.get(f"/admin/testapp/article/{articles[0].pk}/change/")

    html = page.content.decode()
    assert "Mit KI generieren" in html
    assert "Verlauf" in html
    strings = re.search(r'<script id="[^"]+-strings" type="application/json">(.*?)</script>', html)
    assert json.loads(strings.group(1))["candidate"] == "Kandidat %(number)s"
    assert "KI-Kosten:" in html or "KI-Kosten" in html
