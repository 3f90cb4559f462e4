"""``manage.py imagegen_wagtail_demo``: seed the Wagtail demo site and generate its images.

It makes a home page and a few article pages, generates each article's hero image and one
image block of its body with the offline placeholder provider (no network, no key), stores
them in the Wagtail image library through ``imagegen.contrib.wagtail``, and publishes the
pages. It also makes the editor "editor" / "editor" in Wagtail's Editors group, with
``imagegen.generate_image``. Run again, it only fills what is missing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from wagtail.models import Page, Site

import imagegen
from imagegen.contrib.wagtail.images import store_image
from imagegen.contrib.wagtail.panels import find_panel
from wagtail_demo.models import ArticlePage, HomePage

ARTICLES: list[dict[str, str]] = [
    {
        "slug": "lighthouse-keepers-last-winter",
        "title": "The lighthouse keeper's last winter",
        "summary": "A storm-battered island, one more season before the lamp goes automatic.",
        "block": "a brass logbook open on a desk by a rain-streaked window",
    },
    {
        "slug": "night-markets-of-taipei",
        "title": "A food lover's map of Taipei's night markets",
        "summary": "Pepper buns, oyster omelettes and the queue etiquette that makes it work.",
        "block": "steam rising from a pepper bun stall under red lanterns",
    },
    {
        "slug": "rewilding-the-scottish-highlands",
        "title": "Rewilding the Highlands, one pine at a time",
        "summary": "Volunteers plant Caledonian forest on hillsides grazed bare for centuries.",
        "block": "a red squirrel on a young Scots pine",
    },
]


class Command(BaseCommand):
    help = "Seed the Wagtail demo site and generate its images offline."

    def handle(self, *args: Any, **options: Any) -> None:
        editor = self.editor()
        home = self.home()
        made = 0
        for data in ARTICLES:
            article = ArticlePage.objects.child_of(home).filter(slug=data["slug"]).first()
            if article is None:
                article = home.add_child(
                    instance=ArticlePage(
                        title=data["title"], slug=data["slug"], summary=data["summary"]
                    )
                )
            if article.hero_image_id and article.body:
                continue
            panel = find_panel(ArticlePage, "hero_image")
            hero = imagegen.generate(user=editor, **panel.generate_kwargs(article))
            block = imagegen.generate(
                prompt=data["block"], preset="editorial", target=article, user=editor,
                attach=False,
            )  # fmt: skip
            article.hero_image = store_image(hero.images.first(), user=editor, page=article)
            image = store_image(block.images.first(), user=editor, page=article)
            article.body = [
                ("paragraph", f"<p>{data['summary']}</p>"),
                ("image", image),
            ]
            article.save_revision(user=editor).publish()
            made += 1
        self.stdout.write(
            f"Wagtail demo: {made} article(s) generated; "
            f"{ArticlePage.objects.count()} in all, costing "
            f"{sum(imagegen.cost_for(page) for page in ArticlePage.objects.all())}."
        )

    def home(self) -> HomePage:
        """Return the demo's home page, made the default site's root on the first run."""
        home = HomePage.objects.first()
        if home is None:
            root = Page.get_first_root_node()
            home = root.add_child(
                instance=HomePage(
                    title="imagegen on Wagtail",
                    slug="imagegen-home",
                    intro="Articles whose images were generated offline by imagegen.",
                )
            )
            home.save_revision().publish()
        site = Site.objects.filter(is_default_site=True).first()
        if site is None:
            Site.objects.create(hostname="localhost", root_page=home, is_default_site=True)
        elif site.root_page_id != home.pk:
            site.root_page = home
            site.save()
        return home

    def editor(self) -> Any:
        """Return the demo editor, a Wagtail editor who may generate images."""
        user_model = get_user_model()
        editor = user_model.objects.filter(username="editor").first()
        if editor is None:
            editor = user_model.objects.create_user("editor", "editor@example.com", "editor")
            self.stdout.write("Editor editor/editor created.")
        editor.groups.add(Group.objects.get(name="Editors"))
        editor.user_permissions.add(Permission.objects.get(codename="generate_image"))
        return editor
