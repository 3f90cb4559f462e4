"""The Wagtail integration's admin URLs, mounted under the Wagtail admin by its hooks."""

from __future__ import annotations

from django.urls import path

from imagegen.contrib.wagtail import views

app_name = "imagegen_wagtail"

urlpatterns = [
    path("estimate/", views.estimate_view, name="estimate"),
    path("generate/", views.generate_view, name="generate"),
    path("status/", views.status_view, name="status"),
    path("pick/", views.pick_view, name="pick"),
    path("pages/<int:page_id>/<str:field>/estimate/", views.page_estimate_view,
         name="page_estimate"),
    path("pages/<int:page_id>/<str:field>/generate/", views.page_generate_view,
         name="page_generate"),
    path("pages/<int:page_id>/<str:field>/history/", views.page_history_view,
         name="page_history"),
]  # fmt: skip
