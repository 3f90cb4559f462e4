"""imagegen in the Django admin: the ledger and the mixin that lets editors generate images.

``ImageGenAdminMixin`` gives any ``ModelAdmin`` the "Generate images…" action, the AI-spend
column, the Generate button on ``GeneratedImageField`` inputs and the object's total spend;
``GenerationAdmin`` is the ledger of every provider call.
"""

from imagegen.admin.ledger import GeneratedImageInline, GenerationAdmin, ProviderBatchAdmin
from imagegen.admin.mixin import ImageGenAdminMixin

__all__ = ["GeneratedImageInline", "GenerationAdmin", "ImageGenAdminMixin", "ProviderBatchAdmin"]
