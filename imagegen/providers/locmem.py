"""An in-memory provider for tests: records every request, returns canned images or scripted errors.

Like Django's locmem email backend, every call is appended to a module-level outbox
(:data:`requests`), so a test can assert on exactly what would have been sent::

    from imagegen.providers import locmem
    locmem.requests.clear()
    imagegen.generate(prompt="a red bicycle", provider="test")
    assert locmem.requests[0].prompt == "a red bicycle"

Scripted behaviour is queued on the class (:meth:`LocmemProvider.script`) so it survives the
provider handler building a fresh instance after a settings change.
"""

from __future__ import annotations

import io
import time
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from PIL import Image

from imagegen.providers.base import BaseProvider
from imagegen.types import OPERATIONS, CallContext, ImageOutput, ImageRequest, ImageResult

#: Every request any LocmemProvider received, oldest first.
requests: list[ImageRequest] = []

_script: deque[Any] = deque()

MIME = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}


def solid_image(width: int, height: int, fmt: str = "png", color=(90, 120, 200)) -> bytes:
    """Return an encoded solid-colour image, the default canned output."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt.upper())
    return buffer.getvalue()


class LocmemProvider(BaseProvider):
    """Record requests in memory and answer with canned images, costs or scripted errors.

    OPTIONS:

    ``image``: bytes returned for every image (default: a solid image of the requested size).
    ``cost``: Decimal cost reported per image (default: ``0``).
    ``latency``: seconds to sleep per call, to simulate a slow provider.
    ``usage``: dict reported as the provider's usage.
    """

    catalog_key = "locmem"
    display_name = "In-memory (tests)"
    default_model = "locmem"
    #: Every operation: the request (with its ``source_images`` and ``mask``) is recorded.
    operations = OPERATIONS

    def __init__(
        self,
        *,
        image: bytes | None = None,
        cost: Decimal | str | int | None = None,
        latency: float = 0.0,
        usage: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.image = image
        self.cost = Decimal(str(cost)) if cost is not None else Decimal(0)
        self.latency = float(latency)
        self.usage = dict(usage or {})

    @classmethod
    def script(cls, *outcomes: Exception | bytes | ImageResult | None) -> None:
        """Queue what the next calls do: raise an exception, return bytes or a result.

        ``None`` means "behave normally" for that call. Outcomes are consumed in order by any
        LocmemProvider instance; once the queue is empty, calls behave normally.
        """
        _script.extend(outcomes)

    @classmethod
    def reset(cls) -> None:
        """Forget recorded requests and scripted outcomes."""
        requests.clear()
        _script.clear()

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        requests.append(request)
        if self.latency:
            time.sleep(self.latency)
        outcome = _script.popleft() if _script else None
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, ImageResult):
            return outcome
        content = outcome if isinstance(outcome, bytes) else self.image
        return ImageResult(
            images=tuple(self._outputs(request, content)),
            model=request.model or self.model,
            cost=self.cost * request.count,
            usage={"images": request.count, **self.usage},
        )

    def _outputs(self, request: ImageRequest, content: bytes | None) -> Iterable[ImageOutput]:
        fmt = "jpeg" if request.output_format == "jpg" else request.output_format
        for index in range(request.count):
            seed = None if request.seed is None else request.seed + index
            data = content
            if data is None:
                data = solid_image(request.width, request.height, fmt, (90, 120, 200 - index))
            yield ImageOutput(content=data, mime_type=MIME.get(fmt, ""), seed=seed)
