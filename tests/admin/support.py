"""Helpers shared by the admin tests: users, a recording queued runner, page parsing."""

from __future__ import annotations

import html as html_lib
import re
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from imagegen.models import GeneratedImage, Generation, Status
from imagegen.pipeline import rollups
from imagegen.runners import QueuedRunner

CHANGELIST = "/admin/testapp/article/"


class RecordingRunner(QueuedRunner):
    """A queued runner whose workers are this list: dispatched jobs are recorded, not run."""

    jobs: list[tuple[int, str]] = []

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        type(self).jobs.extend(jobs)


RUNNER_PATH = f"{__name__}.RecordingRunner"


def make_user(username: str, *codenames: str, staff: bool = True, superuser: bool = False):
    """Return an active user with the given permission codenames."""
    user = get_user_model().objects.create_user(
        username, password="pw", is_staff=staff, is_superuser=superuser
    )
    if codenames:
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


#: What an editor allowed to generate images for articles has.
EDITOR_PERMS = ("view_article", "change_article", "generate_image")


def act(client, pks, *, url: str = CHANGELIST, **data: Any):
    """POST the "Generate images…" action for ``pks`` from the changelist's action bar."""
    payload = {
        "action": "generate_images",
        ACTION_CHECKBOX_NAME: [str(pk) for pk in pks],
        "index": "0",
        **data,
    }
    return client.post(url, payload)


def prompts_of(articles) -> dict[str, str]:
    """The default prompt fields of the page, as posted back unchanged."""
    return {f"prompt_{a.pk}": f"{a.title}: {a.summary}" if a.summary else a.title for a in articles}


def confirm(client, articles, step: str, **data):
    """Post the "Generate images" confirmation page back as its form does (no ``index``).

    ``step`` is "preview" ("Update estimate") or "generate".
    """
    fields = {
        ACTION_CHECKBOX_NAME: [str(a.pk) for a in articles],
        "action": "generate_images",
        "select_across": "0",
        "imagegen_form": "1",
        "imagegen_prompts_for": "hero",
        "field": "hero",
        "preset": "hero",
        "provider": "",
        "count": "1",
        **prompts_of(articles),
        **data,
        "imagegen_step": step,
    }
    return client.post(CHANGELIST, fields)


def notices(response) -> list[tuple[str, str]]:
    return [(message.tags, str(message)) for message in response.context["messages"]]


def text_of(response) -> str:
    """Return the page's visible text with tags stripped and whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def textarea(response, name: str) -> str:
    """Return the content of the textarea ``name`` as a browser would show it."""
    body = response.content.decode()
    match = re.search(rf'<textarea[^>]*name="{re.escape(name)}"[^>]*>(.*?)</textarea>', body, re.S)
    assert match, f"no textarea {name!r} on the page"
    # Django writes a newline after the opening tag, which browsers drop.
    return html_lib.unescape(match.group(1)).removeprefix("\n")


def selected_option(response, name: str) -> str | None:
    body = response.content.decode()
    match = re.search(rf'<select[^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', body, re.S)
    assert match, f"no select {name!r} on the page"
    chosen = re.search(r'<option value="([^"]*)"[^>]*\bselected\b', match.group(1))
    return html_lib.unescape(chosen.group(1)) if chosen else None


def options_of(response, name: str) -> list[str]:
    body = response.content.decode()
    match = re.search(rf'<select[^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', body, re.S)
    assert match, f"no select {name!r} on the page"
    return [html_lib.unescape(v) for v in re.findall(r'<option value="([^"]*)"', match.group(1))]


def input_tag(response, name: str) -> str:
    body = response.content.decode()
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', body)
    assert match, f"no input {name!r} on the page"
    return match.group(0)


def ledger_row(
    obj,
    *,
    cost: str | None = "0.04",
    status: str = Status.SUCCEEDED,
    field: str = "hero",
    images: int = 0,
    user=None,
    prompt: str = "A lighthouse",
    **fields: Any,
) -> Generation:
    """Write a ledger row for ``obj`` directly (no provider call), with ``images`` image rows."""
    generation = Generation.objects.create(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        field_name=field,
        provider="paid",
        model="locmem",
        prompt=prompt,
        params={"subject": prompt},
        status=status,
        estimated_cost=Decimal("0.04"),
        cost=None if cost is None else Decimal(cost),
        created_by=user,
        **fields,
    )
    for index in range(images):
        GeneratedImage.objects.create(
            generation=generation,
            file=f"imagegen/{generation.pk}-{index}.png",
            width=64,
            height=48,
            mime_type="image/png",
            bytes=10,
            sha256=f"{generation.pk:064d}",
        )
    rollups.count_row(generation, images)  # as the pipeline would have counted it
    return generation


class _FormParser(HTMLParser):
    """Collect the successful controls of the first ``<form>`` whose class contains ``css``."""

    def __init__(self, css: str) -> None:
        super().__init__()
        self.css, self.inside, self.done = css, False, False
        self.data: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._select_first: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form" and not self.done and self.css in (a.get("class") or "").split():
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.append((a["name"], a.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select, self._select_value, self._select_first = a.get("name"), None, None
        elif tag == "option" and self._select:
            value = a.get("value") or ""
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._select_value = value
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), []

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "form":
            self.inside, self.done = False, True
        elif tag == "select" and self._select:
            value = self._select_value if self._select_value is not None else self._select_first
            self.data.append((self._select, value or ""))
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.data.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)


def form_data(response, css: str) -> dict[str, Any]:
    """Return what a browser would submit from the page's form (``css`` is one of its classes).

    Repeated names become lists, as the test client expects.
    """
    parser = _FormParser(css)
    parser.feed(response.content.decode())
    assert parser.done, f"no form.{css} on the page"
    data: dict[str, Any] = {}
    for name, value in parser.data:
        if name in data:
            data[name] = [*(data[name] if isinstance(data[name], list) else [data[name]]), value]
        else:
            data[name] = value
    return data


def total_of(page) -> str:
    """Return the text of the ledger's total, tags stripped and spaces collapsed."""
    html = page.content.decode()
    start = html.index('<p class="imagegen-ledger-total" role="status">')
    text = re.sub(r"<[^>]+>", "", html[start : html.index("</p>", start)])
    return " ".join(text.split())
