"""Admin for the ledger: every generation with its target, status, cost and images.

The changelist shows the total cost of the filtered rows; editors with the
``imagegen.generate_image`` permission can retry failed rows and cancel queued ones. The
provider batches of bulk runs "within 24 hours" have their own read-only list
(:class:`ProviderBatchAdmin`), from which those editors can cancel a batch at the provider. It stays
fast at millions of rows: the count, the total, the sidebar's value lists and the date
navigation come from the rollups (:mod:`imagegen.admin.totals`), and each page reads its own
rows on an index.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from imagegen import services
from imagegen.admin import dashboard
from imagegen.admin.history import made_by
from imagegen.admin.totals import (
    CountedPaginator,
    RollupValuesFilter,
    date_navigation,
    sums_of,
)
from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.models import GeneratedImage, Generation, ProviderBatch, Status
from imagegen.money import format_cost
from imagegen.rendering.credentials import credentials_line


class GeneratedImageInline(admin.TabularInline):
    """The images a generation produced; only their alt text is editable."""

    model = GeneratedImage
    extra = 0
    can_delete = False
    # One column per fact, each short: the file's name once (as a link), its size and type on
    # one line, "Selected" in words where the image is the target's (not a column of icons),
    # and what its Content Credentials say.
    fields = (
        "preview", "alt_text", "file_link", "details", "seed", "selected_mark", "credentials_line",
    )  # fmt: skip
    readonly_fields = tuple(f for f in fields if f != "alt_text")
    classes = ["imagegen-images"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("Content Credentials"))
    def credentials_line(self, image: GeneratedImage) -> str:
        return credentials_line(image)

    @admin.display(description=_("preview"))
    def preview(self, image: GeneratedImage) -> str:
        return _thumbnail(image, large=True)

    @admin.display(description=_("file"))
    def file_link(self, image: GeneratedImage) -> str:
        if not image.file:
            return "—"
        name = image.file.name
        return format_html(
            '<a href="{}" title="{}">{}</a>', image.file.url, name, os.path.basename(name)
        )

    @admin.display(description=_("details"))
    def details(self, image: GeneratedImage) -> str:
        return gettext("%(width)d x %(height)d px, %(type)s, %(size)s") % {
            "width": image.width,
            "height": image.height,
            "type": image.mime_type,
            "size": filesizeformat(image.bytes),
        }

    @admin.display(description=pgettext_lazy("image", "selected"))
    def selected_mark(self, image: GeneratedImage) -> str:
        if not image.selected:
            return ""
        return format_html(
            '<strong class="imagegen-selected">{}</strong>', pgettext_lazy("image", "Selected")
        )


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
        # After the cost, so that the columns' sort numbers in saved links stay as they were.
        "operation_display",
        "created_by",
        "created_at",
    )
    list_display_links = ("thumbnail", "id")
    # The value lists come from the rollup, not a DISTINCT over the ledger.
    list_filter = (
        "status",
        ("provider", RollupValuesFilter),
        ("model", RollupValuesFilter),
        ("preset", RollupValuesFilter),
        "created_at",
    )
    search_fields = ("prompt",)
    # The date navigation is drawn from the rollup (change_list.html, date_navigation()): the
    # admin's date_hierarchy reads DISTINCT years, months or days from the whole ledger.
    date_hierarchy = None
    list_select_related = ("content_type", "created_by", "source_image")
    # The filtered count comes with the total (sums_of()); the unfiltered count is not needed.
    show_full_result_count = False
    inlines = [GeneratedImageInline]
    actions = ["retry_generations", "cancel_generations"]

    class Media:
        css = {"all": ["imagegen/admin.css"]}

    readonly_fields = [f.name for f in Generation._meta.fields] + [
        "target_link", "estimated_cost_display", "cost_display", "unconfirmed_cost_display",
        "operation_display", "lineage",
    ]  # fmt: skip
    fieldsets = (
        (None, {"fields": ("status", "target_link", "field_name", "preset", "provider",
                           "backend", "model", "created_by")}),
        (_("Request"), {"fields": ("operation_display", "lineage", "prompt", "negative_prompt",
                                   "params", "count")}),
        (_("Cost"), {"fields": ("estimated_cost_display", "cost_display",
                                "unconfirmed_cost_display", "usage")}),
        (_("Outcome"), {"fields": ("provider_job_id", "provider_batch", "error_code",
                                   "error_message", "warnings", "attempts", "timings",
                                   "request_hash")}),
        (_("Times"), {"fields": ("created_at", "started_at", "finished_at", "updated_at")}),
    )  # fmt: skip

    def get_queryset(self, request):
        # "target" fetches the targets for their names: one query per model on the page.
        return super().get_queryset(request).prefetch_related("images", "target")

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """Return a paginator whose count comes with the ledger total, in one query."""
        return CountedPaginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            sums=sums_of(request, queryset),
        )

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
        """Return the target's name linked to its change page (its type and id if deleted)."""
        if not generation.content_type_id:
            return "—"
        ct = generation.content_type
        target = generation.target
        if target is None:  # deleted since
            return gettext("%(type)s #%(id)s (deleted)") % {
                "type": ct.name,
                "id": generation.object_id,
            }
        label = str(target)
        try:
            url = reverse(
                f"{self.admin_site.name}:{ct.app_label}_{ct.model}_change",
                args=[generation.object_id],
            )
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("operation"), ordering="operation")
    def operation_display(self, generation: Generation) -> str:
        """Return what the row did, linked to the row that made its source image."""
        done = made_by(generation.operation)
        source = generation.source_image
        if source is None:
            return done
        return format_html(
            '{} <span class="quiet">{}</span>',
            done,
            self._row_link(
                source.generation_id,
                gettext("from #%(id)s") % {"id": source.generation_id},
            ),
        )

    @admin.display(description=_("lineage"))
    def lineage(self, generation: Generation) -> str:
        """Return the chain of rows behind this row's images, oldest first, each linked."""
        image = generation.images.first()
        if image is None and generation.source_image is None:
            return "—"
        chain = image.lineage() if image is not None else generation.source_image.lineage()
        links = [
            self._row_link(
                link.generation_id,
                f"#{link.generation_id} {made_by(link.generation.operation)}",
            )
            for link in reversed(chain)
        ]
        if image is None:  # a failed or queued operation: it would be the next link
            links.append(made_by(generation.operation))
        return format_html_join(" → ", "{}", ((link,) for link in links))

    def _row_link(self, pk: int, label: str) -> str:
        url = reverse(f"{self.admin_site.name}:imagegen_generation_change", args=[pk])
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("cost"), ordering="cost")
    def cost_display(self, generation: Generation) -> str:
        """Return the cost with its currency, and unconfirmed charges apart when there are any."""
        cost = format_cost(generation.cost, generation.currency)
        if generation.is_batch:  # run in a provider batch, at the batch price
            cost = gettext("%(amount)s (batch)") % {"amount": cost}
        if not generation.unconfirmed_cost:
            return cost
        unconfirmed = format_cost(generation.unconfirmed_cost, generation.currency)
        return format_html(
            '{} <span class="imagegen-unconfirmed" title="{}">+ {}</span>',
            cost,
            gettext("Probably billed: the outcome of a call is unknown."),
            gettext("%(amount)s unconfirmed") % {"amount": unconfirmed},
        )

    @admin.display(description=_("estimated cost"))
    def estimated_cost_display(self, generation: Generation) -> str:
        return format_cost(generation.estimated_cost, generation.currency)

    @admin.display(description=_("unconfirmed cost"))
    def unconfirmed_cost_display(self, generation: Generation) -> str:
        return format_cost(generation.unconfirmed_cost, generation.currency)

    def get_urls(self) -> list[Any]:
        # The spend dashboard lives under the ledger's URLs: /admin/imagegen/generation/spend/.
        spend = path(
            "spend/",
            self.admin_site.admin_view(functools.partial(dashboard.spend_view, model_admin=self)),
            name="imagegen_generation_spend",
        )
        return [spend, *super().get_urls()]

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
            context["ledger_dates"] = date_navigation(context["cl"])
            context["spend_dashboard_url"] = reverse(
                f"{self.admin_site.name}:imagegen_generation_spend"
            )
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


@admin.register(ProviderBatch)
class ProviderBatchAdmin(admin.ModelAdmin):
    """The provider batches of bulk runs "within 24 hours": read-only, cancellable."""

    list_display = (
        "id",
        "provider",
        "model",
        "status",
        "submitted_ago",
        "completed",
        "failed",
        "pending",
        "estimated_display",
        "cost_display",
    )
    list_filter = ("status", "provider")
    search_fields = ("batch_id", "key")
    readonly_fields = [f.name for f in ProviderBatch._meta.fields]
    actions = ["cancel_batches"]

    class Media:
        css = {"all": ["imagegen/admin.css"]}

    def has_add_permission(self, request) -> bool:
        return False  # written by the pipeline only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of what was sent and billed

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_generate_image_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may cancel batches (the permission that spends money)."""
        return request.user.has_perm("imagegen.generate_image")

    @admin.display(description=_("submitted"), ordering="submitted_at")
    def submitted_ago(self, batch: ProviderBatch) -> str:
        if batch.submitted_at is None:
            return gettext("not yet")
        return gettext("%(time)s ago") % {"time": timesince(batch.submitted_at)}

    @admin.display(description=_("pending"))
    def pending(self, batch: ProviderBatch) -> int:
        return batch.pending

    @admin.display(description=_("expected cost"), ordering="estimated_cost")
    def estimated_display(self, batch: ProviderBatch) -> str:
        return format_cost(batch.estimated_cost, batch.currency)

    @admin.display(description=_("actual cost"), ordering="cost")
    def cost_display(self, batch: ProviderBatch) -> str:
        return format_cost(batch.cost, batch.currency)

    @admin.action(permissions=["generate_image"], description=_("Cancel selected batches"))
    def cancel_batches(self, request: HttpRequest, queryset: QuerySet) -> None:
        cancelled, errors = 0, []
        for batch in queryset.order_by("pk"):
            if batch.is_finished:
                continue
            try:
                services.cancel_batch(batch, user=request.user)
            except ImagegenError as err:
                errors.append(f"#{batch.pk}: {err}")
                continue
            cancelled += 1
        self.message_user(
            request,
            ngettext(
                "Cancel requested for %(count)d batch; the provider bills what it finished.",
                "Cancel requested for %(count)d batches; the provider bills what they finished.",
                cancelled,
            )
            % {"count": cancelled},
            messages.SUCCESS if cancelled else messages.WARNING,
        )
        for error in errors:
            self.message_user(request, error, messages.ERROR)


def ledger_total(changelist: Any) -> dict[str, Any]:
    """Return the count and the summed cost, estimate and unconfirmed cost of the filtered rows.

    The sums cover every row that matches the filters, the search and the date drill-down, not
    just the page. They were read with the count (:func:`~imagegen.admin.totals.sums_of`), from
    the rollup when the filters allow. Rows in different currencies are summed apart.
    """
    paginator = getattr(changelist, "paginator", None)
    sums = getattr(paginator, "sums", None)
    if sums is None:  # a changelist paginated some other way
        sums = sums_of(None, changelist.queryset)
    return {
        "count": sums.count,
        "cost": sums.formatted("cost"),
        "estimated": sums.formatted("estimated"),
        "unconfirmed": sums.formatted("unconfirmed") if sums.has_unconfirmed else "",
    }
