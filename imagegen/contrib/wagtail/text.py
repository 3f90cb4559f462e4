"""The client-side controller's messages, translated on the server (no JavaScript catalog)."""

from __future__ import annotations

import json

from django.utils.translation import gettext as _


def client_messages() -> str:
    """Return the messages the ``imagegen-generate`` controller shows, as JSON."""
    return json.dumps(
        {
            "generating": _("Generating…"),
            "choose": _("Choose one of the images."),
            "adding": _("Adding the image to the library…"),
            "set": _("The image is set on the field. Save the page to keep it."),
            "missing": _("The generation was not found."),
            "failed": _("Something went wrong."),
        }
    )
