"""The installed version of django-imagegen: read by the build, the user agent and the XMP marks."""

__version__ = "0.1.0"
