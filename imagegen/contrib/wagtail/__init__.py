"""Wagtail integration: generate images where Wagtail editors work, into Wagtail's image model.

Add ``"imagegen.contrib.wagtail"`` to ``INSTALLED_APPS`` *before* ``"wagtail.images"`` (its
chooser template adds the "Generate" tab) and install the ``wagtail`` extra. Nothing here is
imported by the rest of imagegen.
"""
