"""Template tags of the Wagtail integration: the image chooser's "Generate" tab."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString

from imagegen.contrib.wagtail.forms import ChooserGenerateForm
from imagegen.contrib.wagtail.permissions import can_generate
from imagegen.contrib.wagtail.text import client_messages

register = template.Library()


@register.simple_tag(takes_context=True)
def imagegen_generate_tab(context: template.Context) -> SafeString | str:
    """Render the chooser's "Generate" tab panel, or "" when the user may not generate."""
    request = context.get("request")
    if request is None or not can_generate(request.user):
        return ""
    if request.GET.get("multiple"):
        # A multiple chooser (MultipleChooserPanel) takes a list of chosen images; a pick
        # answers with one, so the tab is offered to single choosers only.
        return ""
    # The chooser's own parameters (select_format for rich text, say) go on to the view that
    # answers with the chosen image, so it is inserted as a chosen image would be.
    query = request.GET.urlencode()
    pick_url = reverse("imagegen_wagtail:pick") + (f"?{query}" if query else "")
    data: dict[str, Any] = {
        "form": ChooserGenerateForm(),
        "generate_url": reverse("imagegen_wagtail:generate"),
        "estimate_url": reverse("imagegen_wagtail:estimate"),
        "status_url": reverse("imagegen_wagtail:status"),
        "pick_url": pick_url,
        "estimate": "—",
        "messages": client_messages(),
    }
    return render_to_string("imagegen_wagtail/chooser_tab.html", data, request=request)
