"""The signals imagegen sends, and how it sends them."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("imagegen")

#: Sent when a generation reaches a final status (succeeded, failed, filtered or canceled).
#: Arguments: ``sender`` (the ``Generation`` class) and ``generation`` (the row).
generation_finished = Signal()


def announce(generation: Any) -> None:
    """Send :data:`generation_finished` for ``generation``; a failing receiver is only logged.

    A receiver's error must not turn a finished generation into an error for the caller.
    """
    for receiver, response in generation_finished.send_robust(
        sender=type(generation), generation=generation
    ):
        if isinstance(response, Exception):
            logger.error("imagegen: generation_finished receiver %r raised %r", receiver, response)
