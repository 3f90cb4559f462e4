"""Content Credentials: reading originals, signing derived files, the checks; no network.

Every manifest here is signed with a certificate chain made for the test
(:mod:`imagegen.testing.credentials`): a pretend provider signs the images its fake API serves,
and the site signs the derived files. The tests that need the ``c2pa`` extra skip without it,
except under CI (``CI=true`` or ``IMAGEGEN_REQUIRE_SERVICES=1``), where it must be installed.
"""

from __future__ import annotations

import io
import os
import sys

import pytest
from PIL import Image

import imagegen
from imagegen import provenance
from imagegen.checks import check_settings
from imagegen.derivatives import FORMATS
from imagegen.models import GeneratedImage, Status
from imagegen.testing import OPENAI, MockAPI, fake_provider_settings, openai_image_response
from imagegen.testing.credentials import make_chain, settings_for, signed_image, tampered
from imagegen.types import CredentialState
from tests.conftest import REQUIRE_SERVICES, deriving, png_bytes

REQUIRED = REQUIRE_SERVICES or os.environ.get("CI") == "true"
TAM = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _c2pa_installed() -> bool:
    if provenance.is_available():
        return True
    if REQUIRED:
        raise AssertionError("CI runs the Content Credentials tests: install the c2pa extra.")
    return False


needs_c2pa = pytest.mark.skipif(
    not _c2pa_installed(), reason='needs the c2pa extra: pip install "django-imagegen[c2pa]"'
)


def hide_c2pa(monkeypatch) -> None:
    """Make ``import c2pa`` fail during the test, as if the extra were not installed."""
    monkeypatch.setitem(sys.modules, "c2pa", None)


@pytest.fixture(scope="module")
def chains():
    """The pretend provider's chain, the site's, and a stranger's (nobody trusts it)."""
    if not provenance.is_available():
        pytest.skip("needs the c2pa extra")
    return {name: make_chain(name) for name in ("Pretend AI", "Example Site", "Stranger")}


@pytest.fixture(scope="module")
def provider_png(chains):
    """A PNG as the pretend provider serves it: a created-by-AI manifest, signed."""
    return signed_image(png_bytes(96, 64), "image/png", chains["Pretend AI"])


def generate_from(settings, content: bytes, **credentials) -> GeneratedImage:
    """Generate one image that the fake OpenAI API answers with ``content``; return its row."""
    api = MockAPI().reply(openai_image_response([content]))
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(OPENAI, api)},
        "DERIVATIVE_WIDTHS": [48],
        "CONTENT_CREDENTIALS": credentials,
    }
    with deriving():  # the follow-up job signs the derived files
        generation = imagegen.generate(prompt="A lighthouse at dusk")
    assert generation.status == Status.SUCCEEDED, generation.error_message
    generation.refresh_from_db()
    return generation.images.get()


def stored(image: GeneratedImage, name: str) -> bytes:
    with image.file.storage.open(name) as handle:
        return handle.read()


# --- what the bindings embed in ------------------------------------------------------------


@needs_c2pa
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "AVIF"])
def test_the_bindings_embed_in_every_format_imagegen_stores_or_derives(fmt, chains):
    mime = f"image/{fmt.lower()}"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buffer, format=fmt)
    signed = signed_image(buffer.getvalue(), mime, chains["Pretend AI"])
    assert provenance.can_embed(mime)
    assert provenance.read(signed, mime).state == CredentialState.UNTRUSTED
    with Image.open(io.BytesIO(signed)) as image:  # still a good image for browsers
        image.load()
        assert image.size == (40, 30)


@needs_c2pa
def test_every_derivative_format_can_carry_a_manifest():
    assert all(provenance.can_embed(mime) for _pil, mime, _params in FORMATS.values())


# --- reading -------------------------------------------------------------------------------


@needs_c2pa
def test_read_valid_manifest_names_the_generator_signer_source_type_and_actions(
    settings, chains, provider_png
):
    settings.IMAGEGEN = {"CONTENT_CREDENTIALS": {"TRUST_ANCHORS": chains["Pretend AI"].root_pem}}
    found = provenance.read(provider_png, "image/png")
    assert found.state == CredentialState.VALID
    assert found.claim_generator == "Pretend-AI-API 1.0"
    assert (found.signer, found.issuer) == ("Pretend AI Signer", "Pretend AI")
    assert found.digital_source_type == TAM
    assert found.actions == ("c2pa.created",)
    assert found.failures == ()
    assert found.manifest.startswith("urn:c2pa:")


@needs_c2pa
def test_read_untrusted_signer(settings, chains, provider_png):
    settings.IMAGEGEN = {"CONTENT_CREDENTIALS": {"TRUST_ANCHORS": chains["Stranger"].root_pem}}
    found = provenance.read(provider_png, "image/png")
    assert found.state == CredentialState.UNTRUSTED
    assert found.issuer == "Pretend AI" and found.failures == ()
    settings.IMAGEGEN = {}  # no anchors at all: nobody vouches for anyone
    assert provenance.read(provider_png, "image/png").state == CredentialState.UNTRUSTED


@needs_c2pa
def test_read_tampered_image_is_invalid_with_the_hash_mismatch(settings, chains, provider_png):
    settings.IMAGEGEN = {"CONTENT_CREDENTIALS": {"TRUST_ANCHORS": chains["Pretend AI"].root_pem}}
    found = provenance.read(tampered(provider_png), "image/png")
    assert found.state == CredentialState.INVALID
    assert "assertion.dataHash.mismatch" in found.failures


@needs_c2pa
def test_read_no_manifest():
    assert provenance.read(png_bytes(), "image/png").state == CredentialState.NONE


def test_read_without_the_extra_is_not_checked(monkeypatch):
    hide_c2pa(monkeypatch)
    assert not provenance.is_available()
    assert provenance.read(png_bytes(), "image/png") == provenance.Credentials()
    assert provenance.read(png_bytes(), "image/png").state == CredentialState.NOT_CHECKED


# --- the pipeline records what the original says ------------------------------------------


@needs_c2pa
@pytest.mark.django_db
def test_generation_records_valid_credentials_of_the_original(settings, chains, provider_png):
    image = generate_from(settings, provider_png, TRUST_ANCHORS=chains["Pretend AI"].root_pem)
    assert image.content_credentials == CredentialState.VALID
    assert image.credentials["issuer"] == "Pretend AI"
    assert image.credentials["claim_generator"] == "Pretend-AI-API 1.0"
    assert image.credentials["digital_source_type"] == TAM
    assert image.credentials["actions"] == ["c2pa.created"]
    assert stored(image, image.file.name) == provider_png  # the original is kept untouched
    assert "credentials_ms" in image.generation.timings


@needs_c2pa
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "state"),
    [("untrusted", "untrusted"), ("tampered", "invalid"), ("none", "none")],
)
def test_generation_records_untrusted_invalid_and_missing(
    settings, chains, provider_png, case, state
):
    content = {"untrusted": provider_png, "tampered": tampered(provider_png)}.get(
        case, png_bytes(96, 64)
    )
    image = generate_from(settings, content, TRUST_ANCHORS=chains["Stranger"].root_pem)
    assert image.content_credentials == state
    if case == "tampered":
        assert "assertion.dataHash.mismatch" in image.credentials["failures"]
    if case == "none":
        assert image.credentials == {}


@pytest.mark.django_db
def test_generation_without_the_extra_records_not_checked(settings, monkeypatch):
    hide_c2pa(monkeypatch)
    image = generate_from(settings, png_bytes(96, 64))
    assert image.content_credentials == CredentialState.NOT_CHECKED
    assert all("signed" not in entry for entry in image.derivatives)


# --- signing derived files -----------------------------------------------------------------


@needs_c2pa
@pytest.mark.django_db
def test_signed_derivatives_read_back_with_the_original_as_parent(settings, chains, provider_png):
    anchors = chains["Pretend AI"].root_pem + chains["Example Site"].root_pem
    image = generate_from(
        settings, provider_png, **settings_for(chains["Example Site"], TRUST_ANCHORS=anchors)
    )
    original = provenance.read(provider_png, "image/png")
    assert {entry["format"] for entry in image.derivatives} == {"webp", "avif"}
    for entry in image.derivatives:
        assert entry["signed"] is True
        content = stored(image, entry["name"])
        found = provenance.read(content, entry["mime_type"])
        assert found.state == CredentialState.VALID, found.failures
        assert (found.signer, found.issuer) == ("Example Site Signer", "Example Site")
        assert found.claim_generator == f"django-imagegen {imagegen.__version__}"
        assert found.digital_source_type == TAM
        resized = entry["width"] != image.width
        assert found.actions == ("c2pa.opened", "c2pa.converted") + (
            ("c2pa.resized",) if resized else ()
        )
        # The chain: the derived file's parent ingredient is the provider's manifest.
        assert found.ingredients == (original.manifest,)
        assert b"trainedAlgorithmicMedia" in content  # the IPTC XMP is still there
    assert image.generation.warnings == []
    assert "signing_ms" in image.generation.timings


@needs_c2pa
@pytest.mark.django_db
def test_ingredient_chain_of_a_derivative_from_an_untrusted_original(settings, chains):
    stranger_png = signed_image(png_bytes(96, 64), "image/png", chains["Stranger"])
    anchors = chains["Example Site"].root_pem
    image = generate_from(
        settings, stranger_png, **settings_for(chains["Example Site"], TRUST_ANCHORS=anchors)
    )
    assert image.content_credentials == CredentialState.UNTRUSTED
    entry = image.derivatives[0]
    content = stored(image, entry["name"])
    c2pa = provenance.c2pa_module()
    with c2pa.Reader(entry["mime_type"], io.BytesIO(content)) as reader:
        manifest = reader.get_active_manifest()
        store = reader.json()
    (parent,) = manifest["ingredients"]
    assert parent["relationship"] == "parentOf"
    assert parent["active_manifest"] == image.credentials["manifest"]
    assert image.credentials["manifest"] in store  # the provider's manifest travels along
    # The site vouches for its own manifest; the parent's untrusted signer stays on record.
    failures = parent["validation_results"]["activeManifest"]["failure"]
    assert [f["code"] for f in failures] == ["signingCredential.untrusted"]


@needs_c2pa
@pytest.mark.django_db
def test_derivatives_of_an_original_without_a_manifest_are_signed_too(settings, chains):
    image = generate_from(settings, png_bytes(96, 64), **settings_for(chains["Example Site"]))
    assert image.content_credentials == CredentialState.NONE
    entry = image.derivatives[0]
    found = provenance.read(stored(image, entry["name"]), entry["mime_type"])
    assert found.state == CredentialState.UNTRUSTED  # no TRUST_ANCHORS configured
    assert found.ingredients == ()  # a parent without a manifest has no manifest to point to


@needs_c2pa
@pytest.mark.django_db
def test_without_a_signer_derivatives_keep_only_the_iptc_xmp(settings, chains, provider_png):
    image = generate_from(settings, provider_png)
    for entry in image.derivatives:
        assert "signed" not in entry
        content = stored(image, entry["name"])
        assert provenance.read(content, entry["mime_type"]).state == CredentialState.NONE
        assert b"trainedAlgorithmicMedia" in content


def broken_signer():
    raise RuntimeError("the KMS is down")


#: A ``SIGNER`` callable for the tests: the site's chain, signed in Python.
SITE_CHAIN = None


def callable_signer():
    """Return a ``c2pa.Signer`` that signs through a Python callback, as a KMS signer would."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    c2pa = provenance.c2pa_module()
    key = serialization.load_pem_private_key(SITE_CHAIN.key_pem.encode(), password=None)

    def sign(data: bytes) -> bytes:
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    return c2pa.Signer.from_callback(sign, c2pa.C2paSigningAlg.ES256, SITE_CHAIN.chain_pem)


@needs_c2pa
@pytest.mark.django_db
def test_signer_callable_signs_like_a_kms(settings, chains, provider_png, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "SITE_CHAIN", chains["Example Site"])
    image = generate_from(
        settings,
        provider_png,
        SIGNER="tests.test_provenance.callable_signer",
        TRUST_ANCHORS=chains["Example Site"].root_pem,
    )
    entry = image.derivatives[0]
    found = provenance.read(stored(image, entry["name"]), entry["mime_type"])
    assert entry["signed"] and found.state == CredentialState.VALID
    assert found.signer == "Example Site Signer"


@needs_c2pa
@pytest.mark.django_db
def test_a_signer_that_fails_leaves_unsigned_files_and_a_warning(settings, provider_png):
    image = generate_from(settings, provider_png, SIGNER="tests.test_provenance.broken_signer")
    assert image.derivatives and all("signed" not in entry for entry in image.derivatives)
    (warning,) = image.generation.warnings
    assert "could not be signed (RuntimeError)" in warning


# --- settings and checks -------------------------------------------------------------------


def ids(settings, **imagegen_settings):
    settings.IMAGEGEN = imagegen_settings
    return {message.id: message for message in check_settings()}


def test_load_pem_from_text_environment_and_file(tmp_path, monkeypatch):
    pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    assert provenance.load_pem(pem, "X") == pem + "\n"
    monkeypatch.setenv("IMAGEGEN_TEST_PEM", pem)
    assert provenance.load_pem("env:IMAGEGEN_TEST_PEM", "X") == pem
    path = tmp_path / "chain.pem"
    path.write_text(pem)
    assert provenance.load_pem(str(path), "X") == pem


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"KEY": "x"}, 'unknown key "KEY"'),
        ({"CERTIFICATE_CHAIN": "-----BEGIN x"}, "go together"),
        ({"SIGNER": "a.b", "PRIVATE_KEY": "-----BEGIN x"}, "not both"),
        ({"ALGORITHM": "md5"}, '"ALGORITHM" must be one of'),
        ({"TRUST_ANCHORS": "env:IMAGEGEN_UNSET_VARIABLE"}, "which is not set"),
        ({"TRUST_ANCHORS": "/nonexistent/anchors.pem"}, "cannot read"),
        ({"VERIFY_URL": "https://verify.example/"}, '"{url}" placeholder'),
    ],
)
def test_malformed_content_credentials_is_e030(settings, config, words):
    error = ids(settings, CONTENT_CREDENTIALS=config)["imagegen.E030"]
    assert words in error.msg
    assert "-----BEGIN" not in error.msg  # never echo key material


def test_without_the_extra_a_signer_is_e031_and_http_providers_w030(settings, monkeypatch):
    hide_c2pa(monkeypatch)
    pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
    found = ids(settings, CONTENT_CREDENTIALS={"CERTIFICATE_CHAIN": pem, "PRIVATE_KEY": pem})
    assert found["imagegen.E031"].hint == provenance.INSTALL_HINT
    api = MockAPI()
    found = ids(settings, PROVIDERS={"default": fake_provider_settings(OPENAI, api)})
    warning = found["imagegen.W030"]
    assert "not checked" in warning.msg and warning.hint == provenance.INSTALL_HINT
    # The offline placeholder's images never carry credentials: a bare install stays quiet.
    assert ids(settings) == {}


@needs_c2pa
def test_configured_formats_that_cannot_carry_a_manifest_are_w031(settings, chains, monkeypatch):
    config = settings_for(chains["Example Site"])
    assert ids(settings, CONTENT_CREDENTIALS=config) == {}
    monkeypatch.setattr(provenance, "can_embed", lambda mime: mime != "image/avif")
    warning = ids(settings, CONTENT_CREDENTIALS=config)["imagegen.W031"]
    assert "avif" in warning.msg
    assert "imagegen.W031" not in ids(settings)  # no signer: nothing to carry


# --- showing it: admin, history, template tags ----------------------------------------------


def record(image: GeneratedImage, state: str, **details) -> GeneratedImage:
    """Write ``state`` and ``details`` on ``image``'s row, as the pipeline would have."""
    GeneratedImage.objects.filter(pk=image.pk).update(
        content_credentials=state, credentials=details
    )
    image.refresh_from_db()
    return image


def render(source: str, **context) -> str:
    from django.template import Context, Template

    return Template("{% load imagegen %}" + source).render(Context(context))


@pytest.fixture
def article_with_credentials(db):
    from tests.testapp.models import Article

    article = Article.objects.create(title="Lighthouse")
    with deriving():
        generation = imagegen.generate(prompt="A lighthouse", target=article, field="hero")
    article.refresh_from_db()
    record(
        generation.images.get(),
        "valid",
        issuer="Pretend AI",
        claim_generator="Pretend-AI-API 1.0",
        digital_source_type=TAM,
    )
    return article


def test_ledger_admin_shows_a_content_credentials_line_per_image(
    admin_client, article_with_credentials
):
    generation = imagegen.models.Generation.objects.get()
    page = admin_client.get(f"/admin/imagegen/generation/{generation.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Content Credentials: valid, signed by Pretend AI; trainedAlgorithmicMedia" in text


def test_widget_history_shows_a_content_credentials_line_per_image(article_with_credentials):
    from django.template.loader import render_to_string

    from imagegen.admin.history import field_history

    context = field_history(article_with_credentials, "hero")
    (item,) = context["entries"][0]["images"]
    assert item["credentials"].startswith("Content Credentials: valid, signed by Pretend AI")
    html = render_to_string("imagegen/widgets/history.html", context)
    assert 'class="imagegen-credentials-line">Content Credentials: valid' in html


@pytest.mark.parametrize(
    ("state", "details", "line"),
    [
        ("not_checked", {}, "Content Credentials: not checked"),
        ("none", {}, "Content Credentials: none in the original"),
        ("untrusted", {"signer": "X Signer"}, "signed by X Signer (a signer not on the trust"),
        ("invalid", {"failures": ["assertion.dataHash.mismatch"]}, "invalid (assertion.dataHash"),
    ],
)
def test_credentials_line_per_state(state, details, line):
    from imagegen.rendering.credentials import credentials_line

    image = GeneratedImage(content_credentials=state, credentials=details)
    assert line in credentials_line(image)
    image.derivatives = [{"name": "a.webp", "signed": True}, {"name": "b.webp", "signed": True}]
    assert credentials_line(image).endswith("; 2 derived files signed by this site")


def test_the_cr_mark_is_off_by_default(article_with_credentials):
    html = render('{% imagegen_image article "hero" %}', article=article_with_credentials)
    assert "imagegen-cr" not in html and html.startswith("<picture")


def test_the_cr_mark_links_the_served_file_to_the_verify_page(article_with_credentials, rf):
    from urllib.parse import quote

    article = article_with_credentials
    html = render(
        '{% imagegen_image article "hero" credentials=True %}',
        article=article,
        request=rf.get("/", HTTP_HOST="www.example.com"),
    )
    url = "http://www.example.com" + article.hero.url
    verify = "https://contentcredentials.org/verify?source=" + quote(url, safe="")
    assert html.startswith('<span class="imagegen-credentials"><picture')
    assert f'<a class="imagegen-cr" href="{verify.replace("&", "&amp;")}"' in html
    assert html.endswith(">cr</a></span>")


def test_the_cr_mark_points_at_the_widest_signed_derivative_and_a_custom_page(
    settings, article_with_credentials
):
    article = article_with_credentials
    image = GeneratedImage.objects.get()
    derivatives = [dict(entry, signed=True) for entry in image.derivatives]
    GeneratedImage.objects.filter(pk=image.pk).update(derivatives=derivatives)
    widest = max(derivatives, key=lambda entry: entry["width"])["name"]
    settings.IMAGEGEN = {"CONTENT_CREDENTIALS": {"VERIFY_URL": "https://verify.test/?u={url}"}}
    article.refresh_from_db()
    html = render('{% imagegen_image article "hero" credentials=True %}', article=article)
    assert 'href="https://verify.test/?u=%2Fmedia%2F' in html
    assert widest.replace("/", "%2F") in html


def test_no_cr_mark_without_credentials(article_with_credentials):
    record(GeneratedImage.objects.get(), "none")
    article_with_credentials.refresh_from_db()
    html = render('{% imagegen_image a "hero" credentials=True %}', a=article_with_credentials)
    assert "imagegen-cr" not in html


def test_the_cr_mark_reads_prefetched_rows_without_queries(
    article_with_credentials, django_assert_num_queries
):
    from imagegen.prefetch import prefetch_images

    (article,) = prefetch_images([article_with_credentials], "hero")
    with django_assert_num_queries(0):
        html = render('{% imagegen_image a "hero" credentials=True %}', a=article)
    assert "imagegen-cr" in html


def test_disclosure_states_what_the_credentials_say(article_with_credentials):
    article = article_with_credentials
    plain = render('{% imagegen_disclosure a "hero" %}', a=article)
    assert "Content Credentials" not in plain
    html = render('{% imagegen_disclosure a "hero" credentials=True %}', a=article)
    assert (
        "AI-generated image · Offline placeholder · Content Credentials: made with AI "
        "(Pretend-AI-API 1.0), signed by Pretend AI</small>"
    ) in html
    for state, details, expected in [
        ("untrusted", {"issuer": "Pretend AI"}, "signed by Pretend AI (signer not verified)<"),
        ("invalid", {"failures": ["x"]}, "· Content Credentials: do not verify<"),
        ("none", {}, "Offline placeholder</small>"),
    ]:
        record(GeneratedImage.objects.get(), state, **details)
        fresh = type(article).objects.get(pk=article.pk)  # no image cached on the instance
        html = render('{% imagegen_disclosure a "hero" credentials=True %}', a=fresh)
        assert expected in html


# --- imagegen_provenance -------------------------------------------------------------------


def run_command(*args) -> tuple[str, str, str | None]:
    """Run imagegen_provenance; return its output, errors and the CommandError text, if any."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("imagegen_provenance", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), str(error)
    return out.getvalue(), err.getvalue(), None


@needs_c2pa
@pytest.mark.django_db
def test_command_counts_and_lists_derivatives_that_lack_credentials(settings, chains, provider_png):
    image = generate_from(settings, provider_png, TRUST_ANCHORS=chains["Pretend AI"].root_pem)
    out, _err, failure = run_command()
    assert failure is None
    assert "Originals: 1 checked: 1 valid." in out
    assert "Derived files: 2 checked: 2 without credentials." in out
    assert "the provider's credential lives only in each original" in out
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "CONTENT_CREDENTIALS": {
            **settings.IMAGEGEN["CONTENT_CREDENTIALS"],
            **settings_for(chains["Example Site"]),
        },
    }
    out, _err, failure = run_command()
    assert "2 derived file(s) lack the credentials their original has." in out
    assert f"LACKING {image.derivatives[0]['name']} (image #{image.pk})" in out


@needs_c2pa
@pytest.mark.django_db
def test_command_exits_non_zero_on_an_invalid_file_and_names_it(settings, chains, provider_png):
    image = generate_from(settings, provider_png)
    # The stored file is changed behind imagegen's back (a CDN "optimizer", a bad restore).
    path = image.file.path
    with open(path, "wb") as handle:
        handle.write(tampered(provider_png))
    out, _err, failure = run_command()
    assert failure == "1 file(s) have invalid Content Credentials."
    (line,) = [line for line in out.splitlines() if line.startswith("INVALID")]
    assert line.startswith(f"INVALID {image.file.name} (image #{image.pk}): ")
    assert "assertion.dataHash.mismatch" in line
    image.refresh_from_db()
    assert image.content_credentials == "untrusted"  # without --record the row is left alone
    run_command("--record")
    image.refresh_from_db()
    assert image.content_credentials == "invalid"
    assert "assertion.dataHash.mismatch" in image.credentials["failures"]


@needs_c2pa
@pytest.mark.django_db
def test_command_records_rows_stored_without_the_extra(settings, monkeypatch, provider_png):
    with monkeypatch.context() as patch:
        hide_c2pa(patch)
        image = generate_from(settings, provider_png)
    assert image.content_credentials == "not_checked"
    out, _err, failure = run_command("--record", "--ids", str(image.pk), "-v", "2")
    assert failure is None and "Recorded 1 changed row(s)." in out
    assert f"untrusted signer     {image.file.name} (image #{image.pk}) Pretend AI" in out
    image.refresh_from_db()
    assert image.content_credentials == "untrusted"
    assert image.credentials["issuer"] == "Pretend AI"


@pytest.mark.django_db
def test_command_without_the_extra_says_how_to_install_it(monkeypatch):
    hide_c2pa(monkeypatch)
    _out, _err, failure = run_command()
    assert failure and provenance.INSTALL_HINT in failure


@needs_c2pa
@pytest.mark.django_db
def test_command_reports_missing_files(settings, provider_png):
    image = generate_from(settings, provider_png)
    image.file.storage.delete(image.file.name)
    out, err, failure = run_command()
    assert failure is None
    assert f"MISSING {image.file.name} (image #{image.pk})" in err
    assert "1 file(s) are missing from storage." in out


# --- a downloading provider: the bytes (and their credentials) arrive untouched -------------


@needs_c2pa
@pytest.mark.django_db
def test_a_signed_image_downloaded_from_a_provider_cdn_keeps_its_credentials(
    settings, chains, provider_png
):
    from imagegen.providers.replicate import ReplicateProvider
    from tests.providers.conftest import MockAPI as ProviderAPI
    from tests.providers.support import PollingHarness

    harness = PollingHarness(ReplicateProvider, "flux", key="r8_test", fixtures="replicate")
    body = dict(harness.fixture("prediction_schnell_succeeded.json"))
    body["output"] = ["https://replicate.delivery/xezq/abc123/out-0.png"]
    api = ProviderAPI().reply(201, json=body)
    cdn = ProviderAPI().reply(content=provider_png)
    from imagegen.providers import providers
    from tests.providers.support import wire

    settings.IMAGEGEN = {
        **harness.pipeline_settings(api),
        "DERIVATIVE_WIDTHS": [48],
        "CONTENT_CREDENTIALS": settings_for(
            chains["Example Site"],
            TRUST_ANCHORS=chains["Pretend AI"].root_pem + chains["Example Site"].root_pem,
        ),
    }
    wire(providers["flux"], cdn)  # downloads from the fake CDN, on a public address
    with deriving():
        generation = imagegen.generate(prompt="a red fox", provider="flux")
    assert generation.status == Status.SUCCEEDED, generation.error_message
    image = generation.images.get()
    assert stored(image, image.file.name) == provider_png
    assert image.content_credentials == CredentialState.VALID
    assert image.credentials["issuer"] == "Pretend AI"
    for entry in image.derivatives:
        found = provenance.read(stored(image, entry["name"]), entry["mime_type"])
        assert found.state == CredentialState.VALID
        assert found.ingredients == (image.credentials["manifest"],)


@needs_c2pa
@pytest.mark.django_db
def test_a_derivative_of_a_tampered_original_records_the_parent_failure(
    settings, chains, provider_png
):
    image = generate_from(
        settings,
        tampered(provider_png),
        **settings_for(chains["Example Site"], TRUST_ANCHORS=chains["Example Site"].root_pem),
    )
    assert image.content_credentials == CredentialState.INVALID
    entry = image.derivatives[0]
    c2pa = provenance.c2pa_module()
    with c2pa.Reader(entry["mime_type"], io.BytesIO(stored(image, entry["name"]))) as reader:
        (parent,) = reader.get_active_manifest()["ingredients"]
    # The site's manifest says what it did; the parent's broken hash stays on record in it.
    failures = parent["validation_results"]["activeManifest"]["failure"]
    assert "assertion.dataHash.mismatch" in [failure["code"] for failure in failures]
