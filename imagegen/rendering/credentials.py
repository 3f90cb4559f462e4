"""What pages and the admin say about an image's Content Credentials, and the "cr" mark.

Everything here reads what the pipeline recorded on the ``GeneratedImage`` row (its
``content_credentials`` state, its ``credentials`` details, the ``signed`` flag of each derived
file) and never opens a file: verifying happens in the worker, once, not on each request.

* :func:`credentials_line`: the admin's "Content Credentials: ..." line of one image.
* :func:`credentials_statement`: what ``{% imagegen_disclosure ... credentials=True %}`` adds.
* :func:`render_mark`: the "cr" mark of ``{% imagegen_image ... credentials=True %}``, a link
  to a verify page (``IMAGEGEN["CONTENT_CREDENTIALS"]["VERIFY_URL"]``) for the served file.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from imagegen.provenance import verify_url
from imagegen.types import CredentialState

#: States in which the file carries a manifest that is intact.
INTACT = frozenset({CredentialState.VALID, CredentialState.UNTRUSTED})


def details_of(image: Any) -> dict[str, Any]:
    """Return the recorded credential details of ``image`` (a row or a model instance)."""
    details = getattr(image, "credentials", None)
    if isinstance(details, str):  # a light row may hold the column's JSON text
        try:
            details = json.loads(details)
        except ValueError:
            return {}
    return details if isinstance(details, dict) else {}


def signed_derivatives(image: Any) -> list[dict[str, Any]]:
    """Return the derived-file entries of ``image`` that carry the site's signed manifest."""
    entries = getattr(image, "derivatives", None) or []
    return [e for e in entries if isinstance(e, dict) and e.get("signed") is True]


def source_type_name(url: str) -> str:
    """Return the last part of an IPTC digital source type URL ("trainedAlgorithmicMedia")."""
    return url.rstrip("/").rsplit("/", 1)[-1] if url else ""


def credentials_line(image: Any) -> str:
    """Return the admin's one-line account of ``image``'s Content Credentials, translated."""
    state = getattr(image, "content_credentials", CredentialState.NOT_CHECKED)
    details = details_of(image)
    who = details.get("issuer") or details.get("signer") or ""
    if state == CredentialState.VALID:
        text = gettext("valid, signed by %(who)s") % {"who": who or "?"}
    elif state == CredentialState.UNTRUSTED:
        text = gettext("intact, signed by %(who)s (a signer not on the trust list)") % {
            "who": who or "?"
        }
    elif state == CredentialState.INVALID:
        codes = ", ".join(details.get("failures") or []) or "?"
        text = gettext("invalid (%(codes)s)") % {"codes": codes}
    elif state == CredentialState.NONE:
        text = gettext("none in the original")
    else:
        text = gettext("not checked")
    parts = [text]
    source = source_type_name(details.get("digital_source_type") or "")
    if source and state in INTACT:
        parts.append(source)
    signed = signed_derivatives(image)
    if signed:
        count = len(signed)
        parts.append(
            ngettext(
                "%(count)d derived file signed by this site",
                "%(count)d derived files signed by this site",
                count,
            )
            % {"count": count}
        )
    return gettext("Content Credentials: %(summary)s") % {"summary": "; ".join(parts)}


def credentials_statement(image: Any) -> str:
    """Return what the credentials say, for a page: "" when there are none to speak of.

    "Content Credentials: made with AI by Pretend AI-API, signed by Pretend AI", with
    "(signer not verified)" for an untrusted signer; a file whose manifest does not verify
    says so. Files without a manifest, or not checked, get "" (no claim the row cannot back).
    """
    state = getattr(image, "content_credentials", CredentialState.NOT_CHECKED)
    if state == CredentialState.INVALID:
        return gettext("Content Credentials: do not verify")
    if state not in INTACT:
        return ""
    details = details_of(image)
    source = source_type_name(details.get("digital_source_type") or "")
    made = (
        gettext("made with AI")
        if source in ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia")
        else gettext("made")
    )
    generator = details.get("claim_generator") or ""
    who = details.get("issuer") or details.get("signer") or ""
    parts = [f"{made} ({generator})" if generator else made]
    if who:
        parts.append(gettext("signed by %(who)s") % {"who": who})
    text = gettext("Content Credentials: %(what)s") % {"what": ", ".join(parts)}
    if state == CredentialState.UNTRUSTED:
        text += " " + gettext("(signer not verified)")
    return text


def has_credentials(image: Any) -> bool:
    """Return whether a checker would find intact credentials in a file of ``image``."""
    state = getattr(image, "content_credentials", CredentialState.NOT_CHECKED)
    return state in INTACT or bool(signed_derivatives(image))


def credentials_file(image: Any) -> str:
    """Return the storage name of the file a verify page should check: the served one.

    The widest derived file the site signed (it holds the provider's manifest too), else the
    original.
    """
    signed = signed_derivatives(image)
    widest = max(signed, key=lambda e: e.get("width") or 0, default=None)
    if widest is not None and isinstance(widest.get("name"), str):
        return widest["name"]
    return getattr(image, "file_name", None) or image.file.name


def render_mark(file_url: str) -> SafeString:
    """Return the "cr" mark: a link to the verify page for the absolute ``file_url``."""
    href = verify_url().replace("{url}", quote(file_url, safe=""))
    label = gettext("Content Credentials: inspect where this image comes from")
    return format_html(
        '<a class="imagegen-cr" href="{}" title="{}" aria-label="{}" target="_blank" '
        'rel="noopener">cr</a>',
        href,
        label,
        label,
    )
