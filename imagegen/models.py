"""The ledger: one Generation row per provider request and one GeneratedImage row per output."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import OuterRef, Subquery, Sum, Value
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from imagegen.storage import get_storage
from imagegen.types import CredentialState, Spend


class Status(models.TextChoices):
    """Where a generation is in its life."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    FILTERED = "filtered", _("Filtered")
    CANCELED = "canceled", _("Canceled")


#: Allowed status changes: from -> the statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELED, Status.FAILED}),
    Status.RUNNING: frozenset(
        {Status.SUCCEEDED, Status.FAILED, Status.FILTERED, Status.CANCELED, Status.QUEUED}
    ),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELED: frozenset({Status.QUEUED}),
    Status.SUCCEEDED: frozenset(),
    Status.FILTERED: frozenset(),
}
FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.FILTERED, Status.CANCELED})
#: Between the job ids of a split request's calls in ``Generation.provider_job_id``.
JOB_SEPARATOR = ","


class Credentials(models.TextChoices):
    """What an image's C2PA Content Credentials say (the values of ``CredentialState``)."""

    NOT_CHECKED = CredentialState.NOT_CHECKED.value, _("Not checked")
    NONE = CredentialState.NONE.value, _("None")
    VALID = CredentialState.VALID.value, _("Valid")
    UNTRUSTED = CredentialState.UNTRUSTED.value, _("Valid, untrusted signer")
    INVALID = CredentialState.INVALID.value, _("Invalid")


class GenerationQuerySet(models.QuerySet):
    """Queries over the ledger."""

    def for_object(self, obj: models.Model, field: str | None = None) -> GenerationQuerySet:
        """Return the generations made for ``obj`` (and one of its fields, if given)."""
        qs = self.filter(content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk))
        return qs.filter(field_name=field) if field else qs

    def total_cost(self) -> Decimal:
        """Return the sum of actual costs (rows without one count as zero)."""
        return self.aggregate(total=Sum("cost"))["total"] or Decimal("0")

    def spend(self) -> Spend:
        """Return the confirmed and the unconfirmed charges of these rows, apart: one query."""
        totals = self.aggregate(confirmed=Sum("cost"), unconfirmed=Sum("unconfirmed_cost"))
        return Spend(
            confirmed=totals["confirmed"] or Decimal(0),
            unconfirmed=totals["unconfirmed"] or Decimal(0),
        )

    def cost_subquery(self, model: type[models.Model]) -> Coalesce:
        """Return an expression for the total cost of each row of ``model``, for ``annotate()``.

        On the whole ledger (``Generation.objects``) it reads the per-object rollup
        (:class:`ObjectSpend`): one index lookup per row, so sorting a changelist by it stays
        fast at millions of ledger rows. On a filtered queryset it is a correlated subquery on
        the ledger's target index. Either way a changelist annotated with it makes one query
        however many rows it shows.
        """
        if not self.query.has_filters():
            return ObjectSpend.objects.cost_subquery(model)
        ct = ContentType.objects.get_for_model(model)
        per_object = (
            self.filter(content_type=ct, object_id=Cast(OuterRef("pk"), models.CharField()))
            .order_by()
            .values("object_id")
            .annotate(total=Sum("cost"))
            .values("total")[:1]
        )
        money = models.DecimalField(max_digits=14, decimal_places=6)
        return Coalesce(
            Subquery(per_object, output_field=money), Value(Decimal(0)), output_field=money
        )

    def finished(self) -> GenerationQuerySet:
        return self.filter(status__in=FINISHED)

    def waiting_on(self, job_id: str) -> GenerationQuerySet:
        """Return the rows that hold provider job ``job_id``, as their only job or one of many."""
        sep = JOB_SEPARATOR
        return self.filter(
            models.Q(provider_job_id=job_id)
            | models.Q(provider_job_id__startswith=f"{job_id}{sep}")
            | models.Q(provider_job_id__endswith=f"{sep}{job_id}")
            | models.Q(provider_job_id__contains=f"{sep}{job_id}{sep}")
        )


class Generation(models.Model):
    """One request to one provider: what was asked, what came back and what it cost."""

    content_type = models.ForeignKey(
        ContentType,
        verbose_name=_("target type"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    object_id = models.CharField(_("target id"), max_length=64, blank=True, default="")
    field_name = models.CharField(_("target field"), max_length=100, blank=True, default="")
    target = GenericForeignKey("content_type", "object_id")

    preset = models.CharField(_("preset"), max_length=50, blank=True, default="")
    provider = models.CharField(_("provider alias"), max_length=100)
    backend = models.CharField(_("provider backend"), max_length=200, blank=True, default="")
    model = models.CharField(_("model"), max_length=200, blank=True, default="")
    prompt = models.TextField(_("prompt"))
    negative_prompt = models.TextField(_("negative prompt"), blank=True, default="")
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    count = models.PositiveSmallIntegerField(_("images requested"), default=1)

    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    estimated_cost = models.DecimalField(
        _("estimated cost"), max_digits=12, decimal_places=6, default=Decimal("0")
    )
    cost = models.DecimalField(
        _("cost"),
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("What the provider charged, from its usage report; empty when uncharged."),
    )
    unconfirmed_cost = models.DecimalField(
        _("unconfirmed cost"),
        max_digits=12,
        decimal_places=6,
        default=Decimal("0"),
        help_text=_(
            "Estimates of calls whose outcome is unknown (a timeout or a lost connection after "
            "the request was sent): the provider has probably billed them."
        ),
    )
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    usage = models.JSONField(_("usage"), default=dict, blank=True)
    provider_job_id = models.CharField(
        _("provider job id"),
        max_length=2000,
        blank=True,
        default="",
        help_text=_("The provider's job id, or one per call of a split request, comma-separated."),
    )
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    error_message = models.TextField(_("error message"), blank=True, default="")
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    timings = models.JSONField(
        _("timings"), default=dict, blank=True, help_text=_("Milliseconds per pipeline step.")
    )
    request_hash = models.CharField(_("request hash"), max_length=64, blank=True, default="")
    fallback_of = models.ForeignKey(
        "self",
        verbose_name=_("fallback of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallbacks",
        help_text=_("The failed generation this one retried on the preset's next provider."),
    )
    operation = models.CharField(
        _("operation"),
        max_length=32,
        default="generate",
        help_text=_("generate (text to image), edit, inpaint, outpaint, erase, upscale..."),
    )
    source_image = models.ForeignKey(
        "GeneratedImage",
        verbose_name=_("source image"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="edits",
        help_text=_("The generated image this operation worked on."),
    )
    source_file = models.FileField(
        _("source file"),
        storage=get_storage,
        max_length=255,
        blank=True,
        default="",
        help_text=_(
            "The uploaded source image, cleaned of its metadata, when it was not generated."
        ),
    )
    source_sha256 = models.CharField(
        _("source SHA-256"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("SHA-256 of the source image as sent to the provider."),
    )
    mask_file = models.FileField(
        _("mask file"), storage=get_storage, max_length=255, blank=True, default=""
    )

    reservation = models.JSONField(
        _("budget reservation"),
        default=dict,
        blank=True,
        help_text=_(
            "What this request holds against the budget caps until it finishes: the amount "
            "and each cap's period."
        ),
    )

    batch = models.UUIDField(
        _("batch"),
        null=True,
        blank=True,
        db_index=True,
        help_text=_("The bulk run this generation belongs to, such as one admin action."),
    )

    provider_batch = models.ForeignKey(
        "ProviderBatch",
        verbose_name=_("provider batch"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generations",
        help_text=_(
            "The provider's batch job this generation ran in, at the batch price (a bulk run "
            '"within 24 hours").'
        ),
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        verbose_name = _("generation")
        verbose_name_plural = _("generations")
        ordering = ["-created_at", "-pk"]
        permissions = [("generate_image", _("Can generate images"))]
        indexes = [
            models.Index(
                fields=["content_type", "object_id", "field_name"], name="imagegen_gen_target_idx"
            ),
            # With the money columns as trailing keys, so that the ledger's total of one status
            # (a filter the rollups do not answer) is read from the index alone on PostgreSQL.
            # Keys rather than INCLUDE columns: every database takes them (SQLite has no
            # INCLUDE, and Django 6 warns about it, models.W040).
            models.Index(
                fields=[
                    "status",
                    "created_at",
                    "currency",
                    "cost",
                    "estimated_cost",
                    "unconfirmed_cost",
                ],
                name="imagegen_gen_status_idx",
            ),
            models.Index(fields=["created_at"], name="imagegen_gen_created_idx"),
            models.Index(fields=["request_hash"], name="imagegen_gen_hash_idx"),
            # The ledger's filtered pages (newest first) and the per-user budget reads.
            models.Index(fields=["created_by", "created_at"], name="imagegen_gen_user_idx"),
            models.Index(fields=["provider", "created_at"], name="imagegen_gen_provider_idx"),
            models.Index(fields=["model", "created_at"], name="imagegen_gen_model_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.provider}/{self.model} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def is_batch(self) -> bool:
        """Return whether this generation ran in a provider's batch job, at the batch price."""
        return self.provider_batch_id is not None

    @property
    def job_ids(self) -> list[str]:
        """Return the provider job id of each call ("" for a call the provider never accepted)."""
        return self.provider_job_id.split(JOB_SEPARATOR) if self.provider_job_id else []

    def held(self) -> GenerationQuerySet:
        """Return this row as this process last saw it: same status and same attempt number.

        ``attempts`` is the fencing token: each claim, retry or takeover of the row changes it,
        so an update through this queryset does nothing for a worker whose job was taken over
        (or for an editor whose view of the row is stale).
        """
        return type(self).objects.filter(pk=self.pk, status=self.status, attempts=self.attempts)

    def transition(self, to: str, **fields: Any) -> bool:
        """Move to status ``to`` if the row is still as this process saw it; return success.

        This is a conditional UPDATE fenced by :meth:`held`, so of two workers (or a worker and
        an editor) racing for the same row only one wins: the loser gets False and must do
        nothing. ``fields`` are written in the same statement and set on the instance.
        """
        if to not in TRANSITIONS[self.status]:
            raise ValueError(f"A {self.status} generation cannot become {to}.")
        fields["updated_at"] = timezone.now()
        if not self.held().update(status=to, **fields):
            return False
        self.status = to
        for name, value in fields.items():
            setattr(self, name, value)
        return True


class BatchStatus(models.TextChoices):
    """Where a provider batch is: ``pending`` until submitted, then the provider's state.

    The provider states are those of :data:`imagegen.providers.batching.STATES`.
    """

    PENDING = "pending", _("Not submitted yet")
    VALIDATING = "validating", _("Validating")
    IN_PROGRESS = "in_progress", _("In progress")
    FINALIZING = "finalizing", _("Finalizing")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")
    CANCELLING = "cancelling", _("Cancelling")
    CANCELLED = "cancelled", _("Cancelled")


#: Batch statuses after which nothing changes any more.
BATCH_FINISHED = frozenset(
    {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
)


class ProviderBatch(models.Model):
    """One batch job at a provider: many generations run together at the batch price.

    The row is written, with its ``key``, before the provider is called, and the provider's
    ``batch_id`` is recorded the moment the provider returns it: a batch whose id was lost in
    a crash is found again by its key (``batch_find``), never submitted twice.
    """

    provider = models.CharField(_("provider alias"), max_length=100)
    model = models.CharField(_("model"), max_length=200, blank=True, default="")
    #: What the provider calls the batch ("batch_abc123", "batches/xyz"); empty until known.
    batch_id = models.CharField(
        _("provider batch id"), max_length=200, null=True, blank=True, default=None
    )
    key = models.CharField(
        _("idempotency key"),
        max_length=64,
        unique=True,
        help_text=_("imagegen's label of the batch at the provider, to find it after a crash."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    provider_status = models.CharField(_("provider status"), max_length=64, blank=True, default="")
    total = models.PositiveIntegerField(_("requests"), default=0)
    completed = models.PositiveIntegerField(_("done"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    #: Estimated size of the batch's request data, to keep under the provider's byte limit.
    size = models.PositiveBigIntegerField(_("bytes"), default=0)
    output = models.JSONField(
        _("output references"),
        default=dict,
        blank=True,
        help_text=_("Where the provider keeps the results (file ids), as it reported them."),
    )
    estimated_cost = models.DecimalField(
        _("estimated cost"), max_digits=14, decimal_places=6, default=Decimal(0)
    )
    cost = models.DecimalField(
        _("cost"), max_digits=14, decimal_places=6, default=Decimal(0),
        help_text=_("What the provider charged for the requests ingested so far."),
    )  # fmt: skip
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    error = models.TextField(_("error"), blank=True, default="")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    #: When this process started submitting (set before the provider is called).
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    #: Until when one sweeper polls and ingests the batch; the others leave it alone.
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    polled_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("provider batch")
        verbose_name_plural = _("provider batches")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "batch_id"], name="imagegen_providerbatch_id_uniq"
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="imagegen_batch_status_idx")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.batch_id or self.key} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in BATCH_FINISHED

    @property
    def pending(self) -> int:
        """Return how many requests have no result yet."""
        return max(0, self.total - self.completed - self.failed)


class GeneratedImage(models.Model):
    """One image a generation produced, stored under a content-addressed name."""

    generation = models.ForeignKey(
        Generation, verbose_name=_("generation"), on_delete=models.CASCADE, related_name="images"
    )
    file = models.ImageField(_("file"), storage=get_storage, max_length=255)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    mime_type = models.CharField(_("MIME type"), max_length=50)
    bytes = models.PositiveBigIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    seed = models.BigIntegerField(_("seed"), null=True, blank=True)
    revised_prompt = models.TextField(_("revised prompt"), blank=True, default="")
    alt_text = models.CharField(_("alt text"), max_length=500, blank=True, default="")
    lqip = models.TextField(_("low-quality placeholder"), blank=True, default="")
    dominant_color = models.CharField(_("dominant colour"), max_length=7, blank=True, default="")
    thumbhash = models.CharField(
        _("ThumbHash"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("Base64 ThumbHash of the image, for client-side placeholders."),
    )
    derivatives = models.JSONField(
        _("derivatives"),
        default=list,
        blank=True,
        help_text=_(
            "Smaller copies made from the original, ordered by width: "
            "width, height, format, mime_type, name and bytes of each."
        ),
    )
    selected = models.BooleanField(
        _("selected"), default=False, help_text=_("Whether this image is set on its target field.")
    )
    content_credentials = models.CharField(
        _("Content Credentials"),
        max_length=16,
        choices=Credentials.choices,
        default=Credentials.NOT_CHECKED,
        help_text=_("What the C2PA manifest of the original says, read when it was stored."),
    )
    credentials = models.JSONField(
        _("Content Credentials details"),
        default=dict,
        blank=True,
        help_text=_(
            "claim_generator, signer, issuer, digital_source_type, actions, failures and "
            "manifest of the original's active C2PA manifest."
        ),
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text=_("The image an edit, inpaint, upscale... of it was made from."),
    )
    pending = models.CharField(
        _("pending"),
        max_length=100,
        blank=True,
        default="",
        help_text=_(
            "What is still to be made from the original, comma-separated (placeholders, "
            "derivatives); empty once the follow-up job has made them."
        ),
    )
    #: When a follow-up job claimed the row to make its derived files; None when none holds it.
    deriving_since = models.DateTimeField(_("deriving since"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("generated image")
        verbose_name_plural = _("generated images")
        ordering = ["generation", "pk"]
        indexes = [
            models.Index(fields=["sha256"], name="imagegen_img_sha_idx"),
            # Template tags and cleanup look images up by file name.
            models.Index(fields=["file"], name="imagegen_img_file_idx"),
            # The sweeper looks for images whose derived files are still to be made.
            models.Index(
                fields=["pending"],
                name="imagegen_img_pending_idx",
                condition=~models.Q(pending=""),
            ),
        ]

    def __str__(self) -> str:
        return self.file.name

    def lineage(self) -> list[GeneratedImage]:
        """Return this image and its ancestors, newest first: upscaled, inpainted, generated."""
        chain, seen, image = [], set(), self
        while image is not None and image.pk not in seen:
            chain.append(image)
            seen.add(image.pk)
            image = image.parent
        return chain


class MicroAmountField(models.BigIntegerField):
    """A Decimal amount stored as a whole number of millionths, for exact sums in SQL.

    The budget caps add and compare amounts inside ``UPDATE ... WHERE`` statements. On SQLite a
    decimal column is a float in arithmetic, where 0.05 + 0.05 + 0.05 is not 0.15; integers
    are exact on every database. Python sees Decimals with six places, as in the ledger.
    """

    PLACES = 6

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        return None if value is None else Decimal(value).scaleb(-self.PLACES)

    def to_python(self, value: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(str(value))

    def get_prep_value(self, value: Any) -> int | None:
        if value is None or hasattr(value, "resolve_expression"):
            return value
        return int((Decimal(str(value)).scaleb(self.PLACES)).to_integral_value(ROUND_HALF_UP))


class BudgetUse(models.Model):
    """How much of one budget cap one period has used: the running total reservations check.

    A request reserves its estimate on the row of every cap that applies to it with one
    conditional UPDATE, so concurrent requests cannot together pass a cap; it is settled to
    what the provider charged when it finishes. Reading a cap's use is one row, however large
    the ledger grows.
    """

    #: The cap, such as ``"site::month"``, ``"user:12:day"`` or ``"provider:openai:month"``.
    cap = models.CharField(_("cap"), max_length=200)
    #: The first day of the period (the day, or the first of the month) in the site's time zone.
    period_start = models.DateField(_("period start"))
    reserved = MicroAmountField(
        _("reserved"),
        default=0,
        help_text=_("Estimates of requests that have not finished yet."),
    )
    spent = MicroAmountField(
        _("spent"),
        default=0,
        help_text=_("What providers charged, as they reported it."),
    )
    unconfirmed = MicroAmountField(
        _("unconfirmed"),
        default=0,
        help_text=_("Estimates of calls whose outcome is unknown; probably billed."),
    )
    #: Whether ``budget_threshold_crossed`` was sent for this cap and period.
    warned = models.BooleanField(_("warned"), default=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("budget use")
        verbose_name_plural = _("budget uses")
        constraints = [
            models.UniqueConstraint(fields=["cap", "period_start"], name="imagegen_budget_use_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.cap} from {self.period_start}"

    @property
    def used(self) -> Decimal:
        """Return what counts against the cap: spent, unconfirmed and reserved."""
        return self.spent + self.unconfirmed + self.reserved


def _money(verbose_name: Any) -> models.DecimalField:
    return models.DecimalField(verbose_name, max_digits=16, decimal_places=6, default=Decimal(0))


class SpendDay(models.Model):
    """One day of the ledger, summed per provider, model, preset, user and currency.

    A rollup kept by :mod:`imagegen.pipeline.rollups` in the same transaction as every write
    that changes a sum (a row recorded, a run finished, a row canceled), so the spend
    dashboard, ``imagegen_costs`` and the ledger's totals read a few hundred rows instead of
    the whole ledger. The counts of runs (``failed``, ``filtered``, ``canceled``) count
    endings, so a row that failed, was retried and failed again counts twice.
    """

    #: The day the generation was created, in the site's time zone (``TIME_ZONE``).
    day = models.DateField(_("day"))
    provider = models.CharField(_("provider alias"), max_length=100)
    model = models.CharField(_("model"), max_length=200, blank=True, default="")
    preset = models.CharField(_("preset"), max_length=50, blank=True, default="")
    #: The id of the user who asked, 0 for none: a plain number, so that a user's deletion
    #: cannot merge two rows of the unique key.
    user_id = models.BigIntegerField(_("user id"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    generations = models.PositiveIntegerField(_("generations"), default=0)
    images = models.PositiveIntegerField(_("images"), default=0)
    failed = models.PositiveIntegerField(_("failed runs"), default=0)
    filtered = models.PositiveIntegerField(_("filtered runs"), default=0)
    canceled = models.PositiveIntegerField(_("canceled"), default=0)
    estimated = _money(_("estimated cost"))
    cost = _money(_("cost"))
    unconfirmed = _money(_("unconfirmed cost"))

    class Meta:
        verbose_name = _("day of spend")
        verbose_name_plural = _("days of spend")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "provider", "model", "preset", "user_id", "currency"],
                name="imagegen_spendday_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}"


class ObjectSpendQuerySet(models.QuerySet):
    """Queries over the per-object totals."""

    def cost_subquery(self, model: type[models.Model]) -> Coalesce:
        """Return an expression for the total cost of each row of ``model``, for ``annotate()``.

        One lookup on the unique ``(content_type, object_id)`` index per row, however many
        ledger rows the object has.
        """
        ct = ContentType.objects.get_for_model(model)
        total = self.filter(
            content_type=ct, object_id=Cast(OuterRef("pk"), models.CharField())
        ).values("cost")[:1]
        money = models.DecimalField(max_digits=16, decimal_places=6)
        return Coalesce(Subquery(total, output_field=money), Value(Decimal(0)), output_field=money)


class ObjectSpend(models.Model):
    """What the generations made for one object have cost so far: the "AI spend" rollup."""

    content_type = models.ForeignKey(
        ContentType, verbose_name=_("target type"), on_delete=models.CASCADE, related_name="+"
    )
    object_id = models.CharField(_("target id"), max_length=64)
    generations = models.PositiveIntegerField(_("generations"), default=0)
    estimated = _money(_("estimated cost"))
    cost = _money(_("cost"))
    unconfirmed = _money(_("unconfirmed cost"))

    objects = ObjectSpendQuerySet.as_manager()

    class Meta:
        verbose_name = _("object's spend")
        verbose_name_plural = _("objects' spend")
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id"], name="imagegen_objectspend_uniq"
            )
        ]
        # The dashboard's "top objects" reads the largest totals first.
        indexes = [models.Index(fields=["-cost"], name="imagegen_objspend_cost_idx")]

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id}"
