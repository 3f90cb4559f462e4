"""Template tags of imagegen's admin pages: ``{% load imagegen_admin %}``.

``{% imagegen_budget_banner %}`` shows a warning while a budget cap is past its ``WARN``
threshold in its current period. The ledger, the spend dashboard, imagegen's own pages and the
change forms of ``ImageGenAdminMixin`` admins show it above their messages.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.db import DatabaseError
from django.utils.translation import gettext as _

from imagegen.money import format_cost
from imagegen.pipeline.budgets import current_uses, describe

logger = logging.getLogger("imagegen")

register = template.Library()


@register.inclusion_tag("admin/imagegen/includes/budget_banner.html")
def imagegen_budget_banner() -> dict[str, Any]:
    """Return the banner's lines: one per cap past its warn threshold (one query)."""
    try:
        uses = current_uses(over_threshold=True)
    except (DatabaseError, ValueError):  # a banner must never break an admin page
        logger.warning("imagegen: could not read the budget caps for the banner", exc_info=True)
        return {"alerts": []}
    alerts = [
        _(
            "Budget %(cap)s has used %(percent)s%% of its limit: %(used)s of %(limit)s "
            "(%(unconfirmed)s of it unconfirmed, %(reserved)s reserved by open requests)."
        )
        % {
            "cap": describe(item.use.cap),
            "percent": item.percent,
            "used": format_cost(item.use.used),
            "limit": format_cost(item.cap.limit),
            "unconfirmed": format_cost(item.use.unconfirmed),
            "reserved": format_cost(item.use.reserved),
        }
        for item in uses
    ]
    return {"alerts": alerts}
