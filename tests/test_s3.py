"""S3 through django-storages, with real boto3 calls against a local moto server.

The server (moto's ``ThreadedMotoServer``) listens on 127.0.0.1 on a free port for the whole
session; each test gets its own bucket. Real ``AWS_*`` variables are cleared and fake
credentials set, so nothing can reach AWS. Without boto3 and moto the module is skipped, unless
``IMAGEGEN_REQUIRE_SERVICES=1`` is set (CI), where that is an error.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import transaction

from tests.conftest import REQUIRE_SERVICES, deriving, png_bytes

try:
    import boto3
    import storages.backends.s3
    from moto.server import ThreadedMotoServer
except ImportError as err:
    message = f"S3 tests need boto3 and moto[server] (pip install -e '.[test,s3]'): {err}"
    if REQUIRE_SERVICES:
        raise ImportError(f"{message}; IMAGEGEN_REQUIRE_SERVICES=1 makes that an error.") from err
    pytest.skip(message, allow_module_level=True)

import imagegen
from imagegen.models import GeneratedImage, Status
from imagegen.providers.locmem import LocmemProvider
from imagegen.signals import wait_for_background
from imagegen.storage import content_name, get_storage
from tests.testapp.models import Article

CACHE_CONTROL = "public, max-age=31536000, immutable"
KEY = re.compile(
    r"imagegen/\d{4}/\d{2}/(?P<head>[0-9a-f]{2})/(?P<sha>[0-9a-f]{64})\.(png|webp|avif)"
)


@pytest.fixture(scope="session")
def moto_endpoint():
    """Run one moto S3 server on 127.0.0.1 for the session; return its endpoint URL."""
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                env.delenv(name)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        env.setenv("no_proxy", "127.0.0.1,localhost")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@dataclass
class Bucket:
    """A bucket on the moto server, seen through plain boto3 (not through the storage)."""

    name: str
    client: Any

    def objects(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return {item["Key"] for page in pages for item in page.get("Contents", ())}

    def body(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)


@pytest.fixture
def bucket(settings, locmem, moto_endpoint):
    """A new bucket, configured as the ``imagegen`` STORAGES alias that IMAGEGEN uses."""
    name = f"imagegen-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": moto_endpoint,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                # Content-addressed names: an overwrite could only write the same bytes, and
                # imagegen checks exists() (and the size) before it saves.
                "file_overwrite": True,
                "object_parameters": {"CacheControl": CACHE_CONTROL},
            },
        },
    }
    settings.IMAGEGEN = {**settings.IMAGEGEN, "STORAGE": "imagegen", "DERIVATIVE_WIDTHS": [32]}
    # Model fields resolve their storage callable once, when the models load; the test settings
    # change after that, so point the field at the bucket for url() to use it.
    with mock.patch.object(GeneratedImage._meta.get_field("file"), "storage", get_storage()):
        yield Bucket(name, client)


def names_of(image: GeneratedImage) -> set[str]:
    return {image.file.name, *(item["name"] for item in image.derivatives)}


@pytest.mark.django_db
def test_pipeline_stores_the_original_and_derivatives_in_the_bucket(bucket):
    with deriving():
        generation = imagegen.generate(prompt="a lake", provider="test")
    image = generation.images.get()

    assert bucket.objects() == names_of(image)
    assert len(image.derivatives) == 2  # WebP and AVIF at 32 px
    for key in bucket.objects():
        match = KEY.fullmatch(key)
        assert match, key
        assert match["sha"].startswith(match["head"])
        assert hashlib.sha256(bucket.body(key)).hexdigest() == match["sha"]
        head = bucket.client.head_object(Bucket=bucket.name, Key=key)
        assert head["CacheControl"] == CACHE_CONTROL
        assert head["ContentType"] == f"image/{key.rsplit('.', 1)[1]}"
    assert KEY.fullmatch(image.file.name)["sha"] == image.sha256
    assert image.file.size == image.bytes


@pytest.mark.django_db
def test_the_same_bytes_twice_are_stored_once(bucket):
    data = png_bytes(color=(4, 5, 6))
    LocmemProvider.script(data, data)
    with deriving():
        first = imagegen.generate(prompt="a lake", provider="test")
        second = imagegen.generate(prompt="a lake", provider="test")
    first, second = first.images.get(), second.images.get()

    assert first.pk != second.pk
    assert names_of(first) == names_of(second) == bucket.objects()
    assert len(bucket.objects()) == 3


@pytest.mark.django_db
def test_url_serves_the_image(bucket):
    data = png_bytes(color=(7, 8, 9))
    LocmemProvider.script(data)
    image = imagegen.generate(prompt="a lake", provider="test").images.get()

    url = image.file.url
    assert url.startswith(f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}/{bucket.name}/")
    assert "Signature" in url  # a private bucket: the URL is signed
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        assert response.read() == data


@pytest.mark.django_db
def test_a_foreign_object_under_the_name_is_left_alone(bucket):
    data = png_bytes(color=(10, 11, 12))
    _digest, key = content_name(data, "image/png")
    bucket.put(key, b"something else")
    LocmemProvider.script(data)

    image = imagegen.generate(prompt="a lake", provider="test").images.get()

    assert image.file.name == key.replace(".png", "-1.png")
    assert bucket.body(image.file.name) == data
    assert bucket.body(key) == b"something else"


@pytest.mark.django_db
def test_a_failed_attach_leaves_no_object(bucket):
    article = Article.objects.create(title="A lake")
    with mock.patch.object(Article, "save", side_effect=RuntimeError("database said no")):
        generation = imagegen.generate(target=article, provider="test")
    assert generation.status == Status.FAILED
    assert bucket.objects() == set()


@pytest.mark.django_db
def test_a_storage_error_on_a_derivative_leaves_only_the_original(bucket):
    real_save = storages.backends.s3.S3Storage._save
    calls = []

    def flaky_save(storage, name, content):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("connection reset")
        return real_save(storage, name, content)

    with mock.patch.object(storages.backends.s3.S3Storage, "_save", flaky_save), deriving():
        generation = imagegen.generate(prompt="a lake", provider="test")

    # The follow-up job failed and took back the derived file it had stored; the image waits
    # for the sweeper to make them again.
    assert generation.status == Status.SUCCEEDED
    assert len(calls) == 3
    image = generation.images.get()
    assert image.pending and image.derivatives == []
    assert bucket.objects() == {image.file.name}


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_object(bucket):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        generation = imagegen.generate(prompt="a lake", provider="test")
        assert len(bucket.objects()) == 1  # derived files come once the transaction commits
        assert generation.status == Status.SUCCEEDED
        1 / 0  # noqa: B018 - any error rolls the transaction back
    assert bucket.objects() == set()


@pytest.mark.django_db(transaction=True)
def test_sweep_deletes_unused_objects_only(bucket):
    image = imagegen.generate(prompt="a lake", provider="test").images.get()
    assert wait_for_background(timeout=30)  # the derived files, made after generate() returns
    image.refresh_from_db()
    orphan = "imagegen/2020/01/ab/" + "ab" * 32 + ".png"
    bucket.put(orphan, b"left by a crashed worker")
    bucket.put("uploads/avatar.png", b"not imagegen's")
    out = io.StringIO()

    call_command("imagegen_sweep", stdout=out)  # everything is younger than an hour
    assert orphan in bucket.objects()
    assert "1 newer than 60 minutes" in out.getvalue()

    call_command("imagegen_sweep", "--older-than", "0", "--dry-run", stdout=out)
    assert f"Would delete {orphan} (24 bytes)" in out.getvalue()
    assert orphan in bucket.objects()

    call_command("imagegen_sweep", "--older-than", "0", stdout=(out := io.StringIO()))
    assert f"Deleted {orphan} (24 bytes)" in out.getvalue()
    assert bucket.objects() == names_of(image) | {"uploads/avatar.png"}
