"""``ImageGenAdminMixin``: image generation for any ``ModelAdmin`` whose model has image fields.

Mix it in before ``admin.ModelAdmin``::

    @admin.register(Article)
    class ArticleAdmin(ImageGenAdminMixin, admin.ModelAdmin):
        list_display = ["title"]

and the changelist gets the "Generate images…", "Upscale images…", "Remove backgrounds…" and
"Fit images to the preset…" actions and an "AI spend" column, the change
form gets a Generate button on each ``GeneratedImageField`` (candidates, history, revert) and
the object's total spend. Every way in requires the ``imagegen.generate_image`` permission
and the permission to change the object.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.template.loader import select_template
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from imagegen.admin import endpoints, progress
from imagegen.admin.actions import BULK_OPERATIONS, generate_images_action, operation_action
from imagegen.admin.history import field_history
from imagegen.fields import GeneratedImageField, generated_fields
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.money import format_cost
from imagegen.services import clear_selected, cost_for, mark_selected
from imagegen.widgets import PICK_SUFFIX, Binding, GeneratedImageWidget

#: The annotation holding each row's total cost on the changelist.
SPEND = "imagegen_spend_total"


class ImageGenAdminMixin:
    """Add image generation, spend and history to a ``ModelAdmin``."""

    #: Add the "AI spend" column to ``list_display``.
    imagegen_spend_column: bool = True
    change_form_template = "admin/imagegen/mixin_change_form.html"

    # --- permission -------------------------------------------------------------------------

    def has_generate_image_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Return whether the user may generate images here (also the action's permission)."""
        return endpoints.can_generate(request, self, obj)

    # --- the changelist: action and spend column ---------------------------------------------

    @admin.action(description=_("Generate images…"), permissions=["generate_image"])
    def generate_images(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        if not self.has_generate_image_permission(request):
            raise PermissionDenied
        return generate_images_action(self, request, queryset)

    @admin.action(description=_("Upscale images…"), permissions=["generate_image"])
    def upscale_images(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        return self._operate("upscale_images", request, queryset)

    @admin.action(description=_("Remove backgrounds…"), permissions=["generate_image"])
    def remove_backgrounds(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        return self._operate("remove_backgrounds", request, queryset)

    @admin.action(description=_("Fit images to the preset…"), permissions=["generate_image"])
    def fit_images(self, request: HttpRequest, queryset: models.QuerySet) -> Any:
        return self._operate("fit_images", request, queryset)

    def _operate(self, action: str, request: HttpRequest, queryset: models.QuerySet) -> Any:
        if not self.has_generate_image_permission(request):
            raise PermissionDenied
        return operation_action(BULK_OPERATIONS[action], self, request, queryset)

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 passes where the actions are shown (the changelist or, new, the change
        # form); 5.2 passes nothing. The action belongs to the changelist only.
        if action_location is None:
            actions = super().get_actions(request)
        else:
            actions = super().get_actions(request, action_location=action_location)
            if getattr(action_location, "name", "") != "CHANGE_LIST":
                return actions
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        if generated_fields(self.model) and self.has_generate_image_permission(request):
            for name in ("generate_images", *BULK_OPERATIONS):
                actions.setdefault(name, self.get_action(name))
        return actions

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request)
        if not self.imagegen_spend_column:
            return queryset
        return queryset.annotate(**{SPEND: Generation.objects.cost_subquery(self.model)})

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        columns = list(super().get_list_display(request))
        if self.imagegen_spend_column and "imagegen_spend" not in columns:
            columns.append("imagegen_spend")
        return columns

    @admin.display(description=_("AI spend"), ordering=SPEND)
    def imagegen_spend(self, obj: models.Model) -> str:
        total = getattr(obj, SPEND, None)
        if total is None:  # an object not loaded through get_queryset()
            total = cost_for(obj)
        return format_cost(total)

    # --- URLs ----------------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name

        def bound(view: Any) -> Any:
            @functools.wraps(view)
            def call(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                return view(request, self, *args, **kwargs)

            return call

        field_url = "<path:object_id>/imagegen/<str:field>/"
        urls = [
            path(
                "imagegen/batch/<uuid:batch>/",
                self.admin_site.admin_view(bound(progress.progress_view)),
                name="{}_{}_imagegen_batch".format(*info),
            ),
            path(
                "imagegen/batch/<uuid:batch>/status/",
                bound(progress.status_view),
                name="{}_{}_imagegen_batch_status".format(*info),
            ),
        ]
        for action, view in (
            ("estimate", endpoints.estimate_view),
            ("generate", endpoints.generate_view),
            ("edit", endpoints.edit_view),
            ("status", endpoints.status_view),
            ("history", endpoints.history_view),
        ):
            name = "{}_{}_imagegen_{}".format(*info, action)
            urls.append(path(f"{field_url}{action}/", bound(view), name=name))
        return urls + super().get_urls()

    def imagegen_urls(self, obj: models.Model, field: str) -> dict[str, str]:
        """Return the endpoint URLs of ``obj.<field>``'s widget."""
        prefix = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_imagegen_"
        return {
            action: reverse(prefix + action, args=[obj.pk, field])
            for action in ("estimate", "generate", "edit", "status", "history")
        }

    # --- the change form: widget, picks, total ---------------------------------------------------

    def formfield_for_dbfield(self, db_field: models.Field, request: HttpRequest, **kwargs: Any):
        if isinstance(db_field, GeneratedImageField):
            kwargs.setdefault("widget", GeneratedImageWidget)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        allowed = obj is not None and self.has_generate_image_permission(request, obj)
        for model_field in generated_fields(self.model):
            form_field = form.base_fields.get(model_field.name)
            if form_field is None or not isinstance(form_field.widget, GeneratedImageWidget):
                continue
            form_field.widget.bind(
                Binding(
                    instance=obj if obj is not None else self.model(),
                    field=model_field,
                    urls=self.imagegen_urls(obj, model_field.name) if allowed else {},
                    can_generate=allowed,
                    history=functools.partial(field_history, obj, model_field.name),
                )
            )
        return form

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> models.Model:
        obj = super().save_form(request, form, change)
        picks: dict[str, GeneratedImage] = {}
        for model_field in generated_fields(self.model):
            name = model_field.name
            raw = request.POST.get(form.add_prefix(name) + PICK_SUFFIX, "").strip()
            if not raw or name not in form.fields:
                continue
            # A new upload in the same submission wins over a chosen image.
            if form.cleaned_data.get(name) and name in form.changed_data:
                self.message_user(
                    request,
                    gettext("The uploaded file was kept for %(field)s.")
                    % {"field": model_field.verbose_name},
                    messages.WARNING,
                )
                continue
            image = self._pickable(request, obj, name, raw)
            if image is None:
                self.message_user(
                    request,
                    gettext("The chosen image for %(field)s could not be used.")
                    % {"field": model_field.verbose_name},
                    messages.ERROR,
                )
                continue
            setattr(obj, name, image.file.name)
            picks[name] = image
        obj._imagegen_picks = picks
        return obj

    def _pickable(
        self, request: HttpRequest, obj: models.Model, name: str, raw: str
    ) -> GeneratedImage | None:
        # Only an image this object's field produced may be set, and only by someone allowed
        # to generate: the id in the hidden input is the editor's to tamper with.
        # isdigit() alone accepts "²" and other digits int() refuses.
        if obj.pk is None or not (raw.isascii() and raw.isdigit()):
            return None
        if not self.has_generate_image_permission(request, obj):
            return None
        return (
            GeneratedImage.objects.select_related("generation")
            .filter(
                pk=int(raw),
                # The ledger records the concrete model, also for a proxy model's admin.
                generation__content_type=ContentType.objects.get_for_model(self.model),
                generation__object_id=str(obj.pk),
                generation__field_name=name,
                generation__status=Status.SUCCEEDED,
            )
            .first()
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        picks = getattr(obj, "_imagegen_picks", {})
        for name, image in picks.items():
            mark_selected(image, name)
        for model_field in generated_fields(self.model):
            if model_field.name in form.changed_data and model_field.name not in picks:
                clear_selected(obj, model_field.name)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> TemplateResponse:
        opts = self.opts
        # Extend whatever change form this model would have had without the mixin.
        context["imagegen_base_template"] = select_template(
            [
                f"admin/{opts.app_label}/{opts.model_name}/change_form.html",
                f"admin/{opts.app_label}/change_form.html",
                "admin/change_form.html",
            ]
        ).template
        if obj is not None and obj.pk is not None:
            spend = Generation.objects.for_object(obj).aggregate(
                total=Sum("cost"), rows=Count("pk")
            )
            context["imagegen_spend"] = format_cost(spend["total"] or 0)
            if spend["rows"] and request.user.has_perm("imagegen.view_generation"):
                ct = ContentType.objects.get_for_model(self.model).pk
                context["imagegen_ledger_url"] = (
                    reverse(f"{self.admin_site.name}:imagegen_generation_changelist")
                    + f"?content_type__id__exact={ct}&object_id={obj.pk}"
                )
        return super().render_change_form(request, context, add, change, form_url, obj)
