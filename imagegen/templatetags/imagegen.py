"""Template tags that render generated images, their AI disclosure and SVG placeholders.

``{% load imagegen %}`` gives:

- ``{% imagegen_image obj "field" [sizes="..."] [lqip=False] [class="..."] [loading="lazy"]
  [alt="..."] [fetchpriority="high"] [credentials=True] %}``: a ``<picture>`` with an AVIF and
  a WebP ``<source>`` built from the derived files, and the original as the ``<img>``
  (``width``, ``height``, ``alt``, ``loading="lazy"``, ``decoding="async"``), with the LQIP or
  dominant colour as its background until it loads; the placeholder of the field's preset when
  the field is empty. ``credentials=True`` (off by default) adds the "cr" mark, a link to a
  Content Credentials verify page for the file, when the image has credentials.
- ``{% imagegen_placeholder "hero" %}`` or ``{% imagegen_placeholder "1200x630" [text="..."]
  [color="#ddd"] [class="..."] %}``: an inline ``<svg>`` at the exact aspect ratio, never an
  external service.
- ``{% imagegen_disclosure obj "field" [class="..."] [credentials=True] %}``: a visible,
  translatable "AI-generated image · Provider model" label; nothing for a file imagegen did
  not generate. ``credentials=True`` adds what the image's Content Credentials say.

All are simple tags, so ``... as var`` works. They read only the object passed in and the
``GeneratedImage`` row of its file (one query per object, none after
:func:`imagegen.prefetch.prefetch_images`), and never open a file. They never break a page: an
error is logged on the ``imagegen`` logger and the placeholder renders instead (nothing, for the
disclosure), unless ``IMAGEGEN["TEMPLATE_DEBUG"]`` (or, when that is None, ``DEBUG``) asks for
the error.

This module holds the tags and their error handling; the rendering is in
:mod:`imagegen.rendering` (Django imports every module of this package as a tag library).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django import template
from django.conf import settings
from django.utils.safestring import SafeString

from imagegen.conf import imagegen_settings
from imagegen.prefetch import PREFETCH_ATTR as PREFETCH_ATTR  # re-exported: published here first
from imagegen.rendering import credentials as content_credentials
from imagegen.rendering import disclosure, picture
from imagegen.rendering.placeholder_svg import (
    DEFAULT_SPEC,
    field_preset,
    render_placeholder,
    safe_extras,
)

logger = logging.getLogger("imagegen")
register = template.Library()


# --- error handling ------------------------------------------------------------------------


def _should_raise() -> bool:
    """Return whether tag errors propagate: ``TEMPLATE_DEBUG`` if set, else ``DEBUG``."""
    flag = imagegen_settings.TEMPLATE_DEBUG
    return bool(settings.DEBUG if flag is None else flag)


def _guarded(fallback: Callable[..., str]) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Make a tag function log its errors and return ``fallback(*args, **kwargs)`` instead.

    The fallback gets the tag's own arguments, so it can pick the best placeholder; if the
    fallback fails too, the default placeholder renders, which needs no input at all.
    """

    def decorator(func: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> str:
            try:
                return func(*args, **kwargs)
            except Exception:
                if _should_raise():
                    raise
                logger.exception(
                    "imagegen: {%% %s %%} failed; rendering a placeholder", func.__name__
                )
            try:
                return fallback(*args, **kwargs)
            except Exception:
                logger.exception("imagegen: placeholder fallback of %s failed", func.__name__)
                return render_placeholder(DEFAULT_SPEC)

        return wrapper

    return decorator


# --- tags ----------------------------------------------------------------------------------


def _placeholder_fallback(
    spec: Any = DEFAULT_SPEC,
    text: Any = None,
    color: Any = None,
    **attrs: Any,
) -> SafeString:
    """Fallback of ``imagegen_placeholder``: the default shape, keeping text, colour and class."""
    return render_placeholder(DEFAULT_SPEC, text=text, color=color, attrs=safe_extras(attrs))


@register.simple_tag
@_guarded(_placeholder_fallback)
def imagegen_placeholder(
    spec: Any = DEFAULT_SPEC,
    text: Any = None,
    color: Any = None,
    **attrs: Any,
) -> SafeString:
    """Render an inline SVG placeholder for a preset name, ``"WxH"`` or ``"W:H"``."""
    return render_placeholder(spec, text=text, color=color, attrs=attrs)


def _image_fallback(
    context: Any = None,
    obj: Any = None,
    field_name: Any = "",
    *_options: Any,
    credentials: Any = False,
    **attrs: Any,
) -> SafeString:
    """Fallback of ``imagegen_image``: the placeholder of the field's preset."""
    label = attrs.get("alt") or None
    return render_placeholder(
        field_preset(obj, str(field_name)), label=label, attrs=safe_extras(attrs)
    )


@register.simple_tag(takes_context=True)
@_guarded(_image_fallback)
def imagegen_image(
    context: template.Context,
    obj: Any,
    field_name: str,
    sizes: Any = None,
    lqip: Any = True,
    credentials: Any = False,
    **attrs: Any,
) -> SafeString:
    """Render ``obj.<field_name>`` as a responsive ``<picture>``; a placeholder when empty.

    With ``credentials=True`` an image with Content Credentials gets the "cr" mark after it,
    both in a ``<span class="imagegen-credentials">``.
    """
    info = picture.image_info(obj, field_name)
    if info is None:
        label = attrs.get("alt") or str(obj)
        return render_placeholder(
            field_preset(obj, field_name), label=label, attrs=safe_extras(attrs)
        )
    html = picture.render_picture(info, attrs, sizes=sizes, lqip=lqip)
    if not _on(credentials) or info.generated is None:
        return html
    if not content_credentials.has_credentials(info.generated):
        return html
    name = content_credentials.credentials_file(info.generated)
    url = picture.url_function(picture.derivatives_storage())(name)
    request = context.get("request")
    if request is not None and hasattr(request, "build_absolute_uri"):
        url = request.build_absolute_uri(url)
    mark = content_credentials.render_mark(url)
    return SafeString(f'<span class="imagegen-credentials">{html}{mark}</span>')


def _on(flag: Any) -> bool:
    """Return whether a tag's boolean option is on (``True``, ``"true"``, ``1``...)."""
    if isinstance(flag, str):
        return flag.strip().lower() not in {"", "0", "false", "no", "off", "none"}
    return bool(flag)


def _no_disclosure(*args: Any, **kwargs: Any) -> str:
    """Fallback of ``imagegen_disclosure``: nothing (never a claim the tag could not check)."""
    return ""


@register.simple_tag(takes_context=True)
@_guarded(_no_disclosure)
def imagegen_disclosure(
    context: template.Context,
    obj: Any,
    field_name: str,
    credentials: Any = False,
    **attrs: Any,
) -> SafeString | str:
    """Render a visible "AI-generated" label for ``obj.<field_name>``.

    Renders nothing for an empty field or a file imagegen did not generate (a plain upload).
    With ``credentials=True`` the label adds what the image's Content Credentials say.
    """
    return disclosure.render_disclosure(
        context, obj, field_name, attrs, credentials=_on(credentials)
    )
