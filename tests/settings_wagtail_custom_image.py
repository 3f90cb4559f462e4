"""The Wagtail integration's tests with a custom image model (``customimage.CustomImage``)."""

from tests.settings_wagtail import *  # noqa: F403
from tests.settings_wagtail import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.contrib.wagtail.customimage"]
WAGTAILIMAGES_IMAGE_MODEL = "customimage.CustomImage"
