"""Admin for the ledger: every generation with its target, status, cost and images.

The changelist shows the total cost of the filtered rows; editors with the
``imagegen.generate_image`` permission can retry failed rows and cancel queued ones.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from imagegen import services
from imagegen.exceptions import BudgetExceeded
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.money import format_cost
from imagegen.rendering.credentials import credentials_line


class GeneratedImageInline(admin.TabularInline):
    """The images a generation produced; only their alt text is editable."""

    model = GeneratedImage
    extra = 0
    can_delete = False
    fields = (
        "preview", "alt_text", "file", "width", "height", "mime_type", "bytes", "seed", "selected",
        "credentials_line",
    )  # fmt: skip
    readonly_fields = tuple(f for f in fields if f != "alt_text")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("Content Credentials"))
    def credentials_line(self, image: GeneratedImage) -> str:
        return credentials_line(image)

    @admin.display(description=_("preview"))
    def preview(self, image: GeneratedImage) -> str:
        return _thumbnail(image, large=True)


def _thumbnail(image: GeneratedImage | None, large: bool = False) -> str:
    if image is None or not image.file:
        return "—"
    css = "imagegen-thumb imagegen-thumb--large" if large else "imagegen-thumb"
    return format_html(
        '<img src="{}" alt="{}" class="{}" width="{}" height="{}" loading="lazy">',
        image.file.url,
        image.alt_text,
        css,
        image.width,
        image.height,
    )


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    """The cost ledger: read-only rows, filterable by status, provider, model and preset."""

    list_display = (
        "thumbnail",
        "id",
        "target_link",
        "preset",
        "provider",
        "model",
        "status",
        "cost_display",
        "created_by",
        "created_at",
    )
    list_display_links = ("thumbnail", "id")
    list_filter = ("status", "provider", "model", "preset", "created_at")
    search_fields = ("prompt",)
    date_hierarchy = "created_at"
    list_select_related = ("content_type", "created_by")
    inlines = [GeneratedImageInline]
    actions = ["retry_generations", "cancel_generations"]

    class Media:
        css = {"all": ["imagegen/admin.css"]}

    readonly_fields = [f.name for f in Generation._meta.fields] + ["target_link"]
    fieldsets = (
        (None, {"fields": ("status", "target_link", "field_name", "preset", "provider",
                           "backend", "model", "created_by")}),
        (_("Request"), {"fields": ("prompt", "negative_prompt", "params", "count")}),
        (_("Cost"), {"fields": ("estimated_cost", "cost", "currency", "usage")}),
        (_("Outcome"), {"fields": ("provider_job_id", "error_code", "error_message",
                                   "warnings", "attempts", "timings", "request_hash")}),
        (_("Times"), {"fields": ("created_at", "started_at", "finished_at", "updated_at")}),
    )  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("images")

    def has_add_permission(self, request) -> bool:
        # Rows are written by the pipeline only; a hand-made row would be a false record.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # The rows are the record of what was spent; deleting one would falsify every total.
        return False

    @admin.display(description=_("image"))
    def thumbnail(self, generation: Generation) -> str:
        images = list(generation.images.all())
        chosen = next((i for i in images if i.selected), images[0] if images else None)
        return _thumbnail(chosen)

    @admin.display(description=_("target"))
    def target_link(self, generation: Generation) -> str:
        if not generation.content_type_id:
            return "—"
        ct = generation.content_type
        label = f"{ct.app_label}.{ct.model} #{generation.object_id}"
        try:
            url = reverse(f"admin:{ct.app_label}_{ct.model}_change", args=[generation.object_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("cost"), ordering="cost")
    def cost_display(self, generation: Generation) -> str:
        return format_cost(generation.cost, generation.currency)

    def has_generate_image_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may spend money on generations (the retry and cancel actions)."""
        return request.user.has_perm("imagegen.generate_image")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if isinstance(response, TemplateResponse) and context and "cl" in context:
            context["ledger_total"] = ledger_total(context["cl"])
        return response

    @admin.action(
        permissions=["generate_image"], description=_("Retry selected failed generations")
    )
    def retry_generations(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried, failed_again, skipped, stopped = 0, 0, 0, None
        for generation in queryset.order_by("pk"):
            if generation.status not in services.RETRYABLE:
                skipped += 1
                continue
            try:
                result = services.retry(generation, user=request.user)
            except BudgetExceeded as err:
                stopped = err
                break
            except services.NotRetryable:  # another editor or worker got there first
                skipped += 1
                continue
            retried += 1
            failed_again += result.status in (Status.FAILED, Status.FILTERED)
        parts = [
            ngettext("Retried %(count)d generation.", "Retried %(count)d generations.", retried)
            % {"count": retried}
        ]
        if failed_again:
            parts.append(
                ngettext(
                    "%(count)d of them failed again; see its error.",
                    "%(count)d of them failed again; see their errors.",
                    failed_again,
                )
                % {"count": failed_again}
            )
        if skipped:
            parts.append(
                ngettext(
                    "Skipped %(count)d that was not failed or canceled.",
                    "Skipped %(count)d that were not failed or canceled.",
                    skipped,
                )
                % {"count": skipped}
            )
        level = messages.SUCCESS if retried and not failed_again else messages.WARNING
        if stopped is not None:
            parts.append(_("Stopped by the budget: %(error)s") % {"error": stopped})
            level = messages.ERROR
        self.message_user(request, " ".join(str(part) for part in parts), level)

    @admin.action(
        permissions=["generate_image"], description=_("Cancel selected queued generations")
    )
    def cancel_generations(self, request: HttpRequest, queryset: QuerySet) -> None:
        canceled = skipped = 0
        for generation in queryset.order_by("pk"):
            if services.cancel(generation, user=request.user):
                canceled += 1
            else:  # running or finished, or a worker claimed it a moment ago
                skipped += 1
        parts = [
            ngettext("Canceled %(count)d generation.", "Canceled %(count)d generations.", canceled)
            % {"count": canceled}
        ]
        if skipped:
            parts.append(
                ngettext(
                    "Skipped %(count)d that was not queued.",
                    "Skipped %(count)d that were not queued.",
                    skipped,
                )
                % {"count": skipped}
            )
        level = messages.SUCCESS if canceled and not skipped else messages.WARNING
        self.message_user(request, " ".join(parts), level)


def ledger_total(changelist: Any) -> dict[str, Any]:
    """Return the count and the summed cost and estimate of a changelist's filtered rows.

    The sums come from one query over ``changelist.queryset``, which has the filters, the
    search and the date drill-down applied but not the pagination, so they cover every
    matching row, not just the page. Rows in different currencies are summed apart.
    """
    sums = (
        changelist.queryset.order_by()
        .values("currency")
        .annotate(cost=Sum("cost"), estimated=Sum("estimated_cost"))
        .order_by("currency")
    )
    sums = list(sums) or [{"currency": "USD", "cost": None, "estimated": None}]
    return {
        "count": changelist.result_count,
        "cost": " + ".join(format_cost(row["cost"] or 0, row["currency"]) for row in sums),
        "estimated": " + ".join(
            format_cost(row["estimated"] or 0, row["currency"]) for row in sums
        ),
    }
