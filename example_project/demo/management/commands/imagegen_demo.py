"""``manage.py imagegen_demo``: seed the demo content and generate its missing images."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.text import Truncator

import imagegen
from demo.models import Article, Product, Story
from imagegen.exceptions import ImagegenError
from imagegen.money import format_cost

#: What the demo's "Editors" group may do in imagegen: generate, and read the ledger.
EDITOR_IMAGEGEN_PERMISSIONS = ("generate_image", "view_generation")

ARTICLES: list[dict[str, Any]] = [
    {
        "slug": "lighthouse-keepers-last-winter",
        "title": "The lighthouse keeper's last winter",
        "summary": "On a storm-battered island, the final keeper logs the weather one more season "
        "before the lamp goes automatic.",
        "body": "For forty-one years Ewan MacLeod has climbed the same 112 steps at dusk. "
        "Next spring a sensor will do it for him.",
        "days_ago": 1,
    },
    {
        "slug": "night-markets-of-taipei",
        "title": "A food lover's map of Taipei's night markets",
        "summary": "Pepper buns, oyster omelettes and the queue etiquette that makes it all work.",
        "body": "Arrive hungry, carry cash, and follow the longest line of students: "
        "they always know which stall changed its recipe this week.",
        "days_ago": 3,
    },
    {
        "slug": "rewilding-the-scottish-highlands",
        "title": "Rewilding the Highlands, one pine at a time",
        "summary": "Volunteers are planting Caledonian forest on hillsides grazed bare for two "
        "centuries.",
        "body": "Red squirrels returned first. Then the capercaillie. The planters hope the "
        "beavers are next.",
        "days_ago": 6,
    },
    {
        "slug": "inside-a-vertical-farm",
        "title": "Inside the warehouse growing lettuce without sunlight",
        "summary": "Pink LEDs, recirculated water and a harvest every eighteen days, right next "
        "to the motorway.",
        "body": "The farm uses a tenth of the water of a field. Its electricity bill is "
        "another story, and the founders are frank about it.",
        "days_ago": 9,
    },
    {
        "slug": "the-last-cassette-factory",
        "title": "The last cassette factory is busier than ever",
        "summary": "Tape is back with bands who want something to sell at the merch table.",
        "body": "The machines date from 1978. Spare parts come from other factories that "
        "closed, and from a retired engineer's garage.",
        "days_ago": 14,
    },
    {
        "slug": "cycling-the-danube",
        "title": "Cycling the Danube from the Black Forest to Budapest",
        "summary": "Fourteen hundred kilometres of riverside paths, ferries and apricot strudel.",
        "body": "The route is flat, well signed and almost entirely car-free; the hardest "
        "part is choosing which bakery to skip.",
        "days_ago": 21,
    },
]

PRODUCTS: list[dict[str, Any]] = [
    {
        "name": "Stoneware pour-over coffee dripper",
        "description": "matte charcoal glaze, hand-thrown, fits two to four cups",
        "price": Decimal("34.00"),
    },
    {
        "name": "Waxed canvas weekender bag",
        "description": "olive green canvas with brown leather handles and brass buckles",
        "price": Decimal("189.00"),
    },
    {
        "name": "Walnut desk organiser",
        "description": "solid oiled walnut tray with pen groove and phone slot",
        "price": Decimal("72.50"),
    },
    {
        "name": "Merino wool beanie",
        "description": "ribbed knit in mustard yellow, folded cuff",
        "price": Decimal("29.00"),
    },
    {
        "name": "Ceramic table lamp",
        "description": "speckled white base with a linen drum shade",
        "price": Decimal("118.00"),
    },
    {
        "name": "Trail running shoes",
        "description": "lightweight mesh upper in slate blue with a grippy lugged sole",
        "price": Decimal("145.00"),
    },
]

STORIES: list[dict[str, Any]] = [
    {
        "headline": "Harbour ferry returns after a two-year refit",
        "dek": "The 1950s wooden ferry carries its first passengers across the bay at sunrise",
    },
    {
        "headline": "Community orchard bottles its first cider",
        "dek": "Neighbours press apples from forty heritage trees in a converted barn",
    },
    {
        "headline": "Old railway viaduct opens as a city park",
        "dek": "Wildflower beds and benches now line the stone arches above the river",
    },
    {
        "headline": "Library launches a seed lending shelf",
        "dek": "Gardeners borrow tomato and bean seeds and return some from their harvest",
    },
]


class Command(BaseCommand):
    help = (
        "Seed the demo with articles, products and stories, then generate an image for every "
        "object that has none. Safe to run repeatedly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--regenerate",
            action="store_true",
            help="Generate new images for every demo object, even those that have one.",
        )

    def handle(self, *args: Any, regenerate: bool = False, **options: Any) -> None:
        self.seed_editor()
        objects = self.seed()
        todo = [(obj, field) for obj, field in objects if regenerate or not getattr(obj, field)]
        if not todo:
            self.stdout.write(
                self.style.SUCCESS(f"All {len(objects)} objects already have images.")
            )
            return
        generated, failed, total = 0, 0, Decimal(0)
        for obj, field in todo:
            ok, cost = self.generate_for(obj, field)
            generated += ok
            failed += not ok
            total += cost
        summary = f"Generated {generated} images; total cost {format_cost(total)}"
        if failed:
            summary += f"; {failed} failed"
        style = self.style.WARNING if failed else self.style.SUCCESS
        self.stdout.write(style(summary))

    def seed_editor(self) -> None:
        """Create the "Editors" group and the editor/editor account, if they do not exist.

        An editor may change the demo objects and generate their images, and read the ledger,
        but is not a superuser: it shows what the ``imagegen.generate_image`` permission gives.
        """
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group, Permission

        group, _ = Group.objects.get_or_create(name="Editors")
        wanted = Q(content_type__app_label="imagegen", codename__in=EDITOR_IMAGEGEN_PERMISSIONS)
        wanted |= Q(content_type__app_label="demo", codename__regex=r"^(view|change)_")
        group.permissions.add(*Permission.objects.filter(wanted))
        users = get_user_model().objects
        if users.filter(username="editor").exists():
            return
        editor = users.create_user("editor", "editor@example.com", "editor", is_staff=True)
        editor.groups.add(group)
        self.stdout.write("Editor editor/editor created: staff, may generate images, no superuser.")

    def seed(self) -> list[tuple[models.Model, str]]:
        """Create the demo objects that do not exist yet; return every one with its field."""
        today = timezone.localdate()
        objects: list[tuple[models.Model, str]] = []
        for data in ARTICLES:
            data = dict(data)
            published = today - datetime.timedelta(days=data.pop("days_ago"))
            article, _ = Article.objects.get_or_create(
                slug=data.pop("slug"), defaults={**data, "published": published}
            )
            objects.append((article, "hero"))
        for data in PRODUCTS:
            data = dict(data)
            product, _ = Product.objects.get_or_create(name=data.pop("name"), defaults=data)
            objects.append((product, "photo"))
        for data in STORIES:
            data = dict(data)
            story, _ = Story.objects.get_or_create(headline=data.pop("headline"), defaults=data)
            objects.append((story, "image"))
        return objects

    def generate_for(self, obj: models.Model, field: str) -> tuple[bool, Decimal]:
        """Generate the image of ``obj.<field>``, print one line; return (success, cost)."""
        label = f"{type(obj).__name__} '{Truncator(str(obj)).chars(32)}'"
        try:
            generation = imagegen.generate(target=obj, field=field)
        except ImagegenError as err:
            self.stdout.write(self.style.ERROR(f"{label}: failed ({err})"))
            return False, Decimal(0)
        cost = generation.cost or Decimal(0)
        if generation.status == "succeeded":
            self.stdout.write(
                f"{label}: generated ({generation.model}, {format_cost(cost, generation.currency)})"
            )
            return True, cost
        if generation.status == "queued":
            # A queue runner (Celery, Django Tasks) finishes the job in a worker.
            self.stdout.write(f"{label}: queued (generation #{generation.pk})")
            return True, cost
        reason = generation.error_message or generation.status
        self.stdout.write(self.style.ERROR(f"{label}: {generation.status} ({reason})"))
        return False, cost
