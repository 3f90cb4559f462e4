"""Content Credentials (C2PA): read and verify a file's manifest store, sign derived files.

The reading and signing are done by the official ``c2pa-python`` bindings, the optional
``c2pa`` extra (``pip install "django-imagegen[c2pa]"``). Without it, :func:`read` says
:attr:`~imagegen.types.CredentialState.NOT_CHECKED` and nothing is signed.

* :func:`read` validates the manifest store of an image's bytes (signature, hashes, and the
  signer against ``IMAGEGEN["CONTENT_CREDENTIALS"]["TRUST_ANCHORS"]``) and returns what the
  ledger records of it: a :class:`Credentials`.
* :func:`sign_derived` gives a derived file (a resized or converted copy) a new manifest, signed
  by the site's signer, with the original as its parent ingredient. The original's own
  manifest travels inside it, so a checker sees the chain: provider, then this site.
* :func:`get_signer` builds the signer of ``IMAGEGEN["CONTENT_CREDENTIALS"]``, once per
  process: a certificate chain and private key (PEM text, a file path, or ``"env:NAME"``), or
  the dotted path of a callable that returns a ``c2pa.Signer`` (a KMS or an HSM).

Like :mod:`imagegen.derivatives`, this is a media helper: bytes in, bytes or values out, no
ledger. The pipeline calls it in the worker, never during a request. Edits (``c2pa.edited``
with the source as an ingredient) will use :func:`sign` with their own actions.
"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.utils.module_loading import import_string

from imagegen.conf import imagegen_settings, register_cache
from imagegen.exceptions import ImagegenConfigurationError, ImproperlyInstalled
from imagegen.types import CredentialState
from imagegen.version import __version__

#: IPTC's Digital Source Type for media created by a trained model (IPTC NewsCodes).
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: The keys of ``IMAGEGEN["CONTENT_CREDENTIALS"]``.
SETTING_KEYS = frozenset(
    {
        "CERTIFICATE_CHAIN",
        "PRIVATE_KEY",
        "ALGORITHM",
        "TIMESTAMP_URL",
        "SIGNER",
        "TRUST_ANCHORS",
        "VERIFY_URL",
    }
)
#: Signing algorithms the bindings support, as ``ALGORITHM`` names them.
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
#: The page the "cr" mark links to; ``{url}`` is the image's absolute URL, quoted.
DEFAULT_VERIFY_URL = "https://contentcredentials.org/verify?source={url}"
#: Image types the bindings embed a manifest in, tested with c2pa-python 0.38
#: (``tests/test_provenance.py``): every format imagegen stores or derives.
EMBEDDABLE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/avif")
#: The validation codes that mean only "no trust anchor vouches for this signer".
UNTRUSTED_CODES = frozenset({"signingCredential.untrusted"})
#: The install hint for the extra.
INSTALL_HINT = 'Install the c2pa extra: pip install "django-imagegen[c2pa]"'


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What an image's Content Credentials say, as ``GeneratedImage`` records them."""

    state: CredentialState = CredentialState.NOT_CHECKED
    #: The software that made the active manifest ("OpenAI-API 1.0").
    claim_generator: str = ""
    #: The signing certificate's common name, and the organization that holds it.
    signer: str = ""
    issuer: str = ""
    #: When the claim was signed (from a time-stamp), ISO 8601, when it says.
    signed_at: str = ""
    #: The IPTC digital source type URL the actions give ("...trainedAlgorithmicMedia").
    digital_source_type: str = ""
    #: The actions of the active manifest, in order ("c2pa.created").
    actions: tuple[str, ...] = ()
    #: The validation failure codes ("assertion.dataHash.mismatch").
    failures: tuple[str, ...] = ()
    #: The label of the active manifest ("urn:c2pa:...").
    manifest: str = ""
    #: The active manifest labels of the ingredients (a derived file's parent).
    ingredients: tuple[str, ...] = ()

    @property
    def present(self) -> bool:
        """Whether the file carries a manifest (valid or not)."""
        return self.state in (
            CredentialState.VALID,
            CredentialState.UNTRUSTED,
            CredentialState.INVALID,
        )

    def details(self) -> dict[str, Any]:
        """Return the facts kept in ``GeneratedImage.credentials`` (empty values left out)."""
        values = asdict(self)
        values.pop("state")
        return {key: list(v) if isinstance(v, tuple) else v for key, v in values.items() if v}


def c2pa_module() -> Any:
    """Return the ``c2pa`` module, or None when the extra is not installed."""
    try:
        # An optional dependency, imported on first use: a site without the extra never needs it.
        import c2pa
    except ImportError:
        return None
    return c2pa


def is_available() -> bool:
    """Return whether the ``c2pa`` extra is installed, so files can be read and signed."""
    return c2pa_module() is not None


def _require_c2pa() -> Any:
    module = c2pa_module()
    if module is None:
        raise ImproperlyInstalled(
            f"Content Credentials need the c2pa-python bindings. {INSTALL_HINT}"
        )
    return module


# --- settings ------------------------------------------------------------------------------


def options() -> dict[str, Any]:
    """Return ``IMAGEGEN["CONTENT_CREDENTIALS"]``, an empty dict when unset."""
    value = imagegen_settings.CONTENT_CREDENTIALS
    return dict(value) if isinstance(value, dict) else {}


def signing_configured() -> bool:
    """Return whether a signer is configured (a key and chain, or a ``SIGNER`` callable)."""
    config = options()
    return bool(config.get("SIGNER") or config.get("CERTIFICATE_CHAIN"))


def verify_url() -> str:
    """Return the verify page's URL pattern: ``VERIFY_URL`` or :data:`DEFAULT_VERIFY_URL`."""
    return str(options().get("VERIFY_URL") or DEFAULT_VERIFY_URL)


def check_options() -> list[str]:
    """Return what is wrong with ``IMAGEGEN["CONTENT_CREDENTIALS"]``, one sentence each.

    This reads the certificate and key sources (files, environment variables) but builds no
    signer: a check must not load a KMS client.
    """
    value = imagegen_settings.CONTENT_CREDENTIALS
    if not isinstance(value, dict):
        return [f"it must be a dict, not {type(value).__name__}"]
    problems = [f'unknown key "{key}"' for key in sorted(set(value) - SETTING_KEYS)]
    chain, key, signer = (value.get(k) for k in ("CERTIFICATE_CHAIN", "PRIVATE_KEY", "SIGNER"))
    if signer and (chain or key):
        problems.append('give either "SIGNER" or "CERTIFICATE_CHAIN" and "PRIVATE_KEY", not both')
    elif bool(chain) != bool(key):
        problems.append('"CERTIFICATE_CHAIN" and "PRIVATE_KEY" go together')
    if signer and not isinstance(signer, str):
        problems.append('"SIGNER" must be the dotted path of a callable')
    algorithm = str(value.get("ALGORITHM") or "es256").lower()
    if algorithm not in ALGORITHMS:
        problems.append(f'"ALGORITHM" must be one of {", ".join(ALGORITHMS)}, not {algorithm!r}')
    for name in ("CERTIFICATE_CHAIN", "PRIVATE_KEY", "TRUST_ANCHORS"):
        if value.get(name):
            try:
                load_pem(value[name], name)
            except ImagegenConfigurationError as err:
                problems.append(str(err))
    url = value.get("VERIFY_URL")
    if url is not None and (not isinstance(url, str) or "{url}" not in url):
        problems.append('"VERIFY_URL" must be a URL with a "{url}" placeholder')
    return problems


def load_pem(source: Any, name: str) -> str:
    """Return PEM text from ``source``: the PEM itself, ``"env:NAME"``, or a file path.

    Raise :class:`~imagegen.exceptions.ImagegenConfigurationError` naming the setting ``name``
    when the source is empty, unreadable or not PEM; the message never contains the PEM.
    """
    where = f'IMAGEGEN["CONTENT_CREDENTIALS"]["{name}"]'
    if not isinstance(source, (str, Path)) or not str(source).strip():
        raise ImagegenConfigurationError(f"{where} must be PEM text, a file path or env:NAME.")
    text = str(source).strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    if text.startswith("env:"):
        variable = text[4:]
        pem = os.environ.get(variable, "")
        if not pem.strip():
            raise ImagegenConfigurationError(
                f"{where} reads the environment variable {variable}, which is not set."
            )
    else:
        try:
            pem = Path(text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ImagegenConfigurationError(
                f"{where}: cannot read {text} ({type(err).__name__})."
            ) from err
    if "-----BEGIN" not in pem:
        raise ImagegenConfigurationError(f"{where} is not PEM (no -----BEGIN line).")
    return pem


@functools.cache
def get_signer() -> Any:
    """Return the ``c2pa.Signer`` of ``IMAGEGEN["CONTENT_CREDENTIALS"]``, or None if unset.

    Built once per process and kept until settings change. ``SIGNER`` names a callable taking
    no arguments that returns a ``c2pa.Signer`` (``c2pa.Signer.from_callback(...)`` around a
    KMS or HSM); otherwise the chain and key build one with ``ALGORITHM`` (ES256 by default)
    and, if given, the RFC 3161 time-stamp authority ``TIMESTAMP_URL``.
    """
    config = options()
    if not signing_configured():
        return None
    c2pa = _require_c2pa()
    if config.get("SIGNER"):
        return import_string(config["SIGNER"])()
    info = c2pa.C2paSignerInfo(
        str(config.get("ALGORITHM") or "es256").lower(),
        load_pem(config.get("CERTIFICATE_CHAIN"), "CERTIFICATE_CHAIN").encode(),
        load_pem(config.get("PRIVATE_KEY"), "PRIVATE_KEY").encode(),
        config.get("TIMESTAMP_URL") or None,
    )
    return c2pa.Signer.from_info(info)


register_cache(get_signer.cache_clear)


@functools.cache
def _context_settings() -> str:
    # Always verify the signer against the anchors: without any, every signer is "untrusted"
    # (an honest answer) instead of the check being skipped. No thumbnails: a derived file is
    # itself the thumbnail, and one inside its manifest would double its size.
    config = options()
    settings: dict[str, Any] = {
        "verify": {"verify_trust": True},
        "builder": {"thumbnail": {"enabled": False}},
    }
    if config.get("TRUST_ANCHORS"):
        settings["trust"] = {"trust_anchors": load_pem(config["TRUST_ANCHORS"], "TRUST_ANCHORS")}
    return json.dumps(settings)


register_cache(_context_settings.cache_clear)
_local = threading.local()


def _context(c2pa: Any) -> Any:
    """Return this thread's ``c2pa.Context`` for the current settings."""
    # One per thread: a Context holds native state, and building one parses the anchors.
    settings = _context_settings()
    cached = getattr(_local, "context", None)
    if cached is None or cached[0] != settings:
        cached = (settings, c2pa.Context.from_json(settings))
        _local.context = cached
    return cached[1]


# --- reading -------------------------------------------------------------------------------


def read(content: bytes, mime_type: str) -> Credentials:
    """Read and validate the C2PA manifest store of ``content``; never raises for bad files.

    Returns :attr:`~CredentialState.NOT_CHECKED` without the extra, ``NONE`` without a
    manifest, ``VALID`` when the manifest checks out and a trust anchor vouches for its signer,
    ``UNTRUSTED`` when it checks out but none does, and ``INVALID`` (with the failure codes)
    when it does not: a changed file, a broken or unreadable manifest.
    """
    c2pa = c2pa_module()
    if c2pa is None:
        return Credentials()
    try:
        reader = c2pa.Reader.try_create(mime_type, io.BytesIO(content), None, _context(c2pa))
    except c2pa.C2paError.NotSupported:
        return Credentials()  # a type the bindings cannot read: not checked, not "none"
    except c2pa.C2paError as err:
        # A manifest store that cannot even be parsed is there, and broken.
        code = f"manifest.unreadable.{type(err).__name__.lstrip('_').removeprefix('C2pa')}"
        return Credentials(state=CredentialState.INVALID, failures=(code,))
    if reader is None:
        return Credentials(state=CredentialState.NONE)
    with reader:
        state = reader.get_validation_state() or ""
        results = reader.get_validation_results() or {}
        manifest = reader.get_active_manifest() or {}
    return credentials_from(state, results, manifest)


def credentials_from(state: str, results: dict, manifest: dict) -> Credentials:
    """Return the :class:`Credentials` of a reader's validation state, results and manifest."""
    active = results.get("activeManifest") or {}
    failures = [entry.get("code", "") for entry in active.get("failure") or []]
    for delta in results.get("ingredientDeltas") or []:
        failed = (delta.get("validationDeltas") or {}).get("failure") or []
        failures.extend(entry.get("code", "") for entry in failed)
    failures = list(dict.fromkeys(code for code in failures if code))
    if state == "Trusted":
        verdict = CredentialState.VALID
    elif state == "Valid":
        # Intact, but no anchor vouches for the signer: the only failures are trust ones.
        verdict = CredentialState.UNTRUSTED
    else:
        verdict = CredentialState.INVALID
    if verdict != CredentialState.INVALID:
        failures = [code for code in failures if code not in UNTRUSTED_CODES]
    actions, source_type = _actions(manifest)
    signature = manifest.get("signature_info") or {}
    return Credentials(
        state=verdict,
        claim_generator=_claim_generator(manifest),
        signer=str(signature.get("common_name") or ""),
        issuer=str(signature.get("issuer") or ""),
        signed_at=str(signature.get("time") or ""),
        digital_source_type=source_type,
        actions=tuple(actions),
        failures=tuple(failures),
        manifest=str(manifest.get("label") or ""),
        ingredients=tuple(
            str(item["active_manifest"])
            for item in manifest.get("ingredients") or []
            if isinstance(item, dict) and item.get("active_manifest")
        ),
    )


def _claim_generator(manifest: dict) -> str:
    infos = manifest.get("claim_generator_info") or []
    if infos and isinstance(infos[0], dict):
        info = infos[0]
        return " ".join(str(part) for part in (info.get("name"), info.get("version")) if part)
    return str(manifest.get("claim_generator") or "")


def _actions(manifest: dict) -> tuple[list[str], str]:
    """Return the action names of ``manifest`` and the first digital source type they give."""
    actions: list[str] = []
    source_type = ""
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if isinstance(action, dict):
                actions.append(str(action.get("action", "")))
                source_type = source_type or str(action.get("digitalSourceType") or "")
    return actions, source_type


# --- signing -------------------------------------------------------------------------------


def can_embed(mime_type: str) -> bool:
    """Return whether the bindings can embed a manifest in files of ``mime_type``."""
    c2pa = c2pa_module()
    if c2pa is None:
        return mime_type in EMBEDDABLE_TYPES
    return mime_type in _builder_types(c2pa)


@functools.cache
def _builder_types(c2pa: Any) -> frozenset[str]:
    return frozenset(c2pa.Builder.get_supported_mime_types())


@dataclass(frozen=True, kw_only=True)
class Ingredient:
    """A file a signed file was made from: its bytes, type and relationship."""

    content: bytes
    mime_type: str
    #: "parentOf" for the file this one is a version of; "componentOf" for a part of it.
    relationship: str = "parentOf"
    title: str = ""


@dataclass(frozen=True, kw_only=True)
class Action:
    """One entry of the manifest's actions assertion."""

    action: str
    #: The ingredient it acted on, by index into the ingredients given to :func:`sign`.
    ingredient: int | None = None
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA
    parameters: dict[str, Any] = field(default_factory=dict)


def sign(
    content: bytes,
    mime_type: str,
    *,
    actions: Sequence[Action],
    ingredients: Sequence[Ingredient] = (),
    title: str = "",
    signer: Any = None,
    claim_generator: tuple[str, str] = ("django-imagegen", __version__),
) -> bytes:
    """Return ``content`` with a new signed manifest embedded: ``actions`` on ``ingredients``.

    The ingredients' own manifests (a provider's) go into the new manifest store, so the
    chain can be checked from the signed file alone. Raises ``c2pa.C2paError`` when the
    bindings cannot sign, and :class:`~imagegen.exceptions.ImproperlyInstalled` without them.
    """
    c2pa = _require_c2pa()
    signer = signer if signer is not None else get_signer()
    if signer is None:
        raise ImagegenConfigurationError('IMAGEGEN["CONTENT_CREDENTIALS"] configures no signer.')
    labels = [f"ingredient{index}" for index in range(len(ingredients))]
    entries = []
    for item in actions:
        entry: dict[str, Any] = {"action": item.action}
        parameters = dict(item.parameters)
        if item.ingredient is not None:
            parameters["ingredientIds"] = [labels[item.ingredient]]
        if parameters:
            entry["parameters"] = parameters
        if item.digital_source_type:
            entry["digitalSourceType"] = item.digital_source_type
        entries.append(entry)
    manifest: dict[str, Any] = {
        "claim_generator_info": [{"name": claim_generator[0], "version": claim_generator[1]}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": entries}}],
    }
    if title:
        manifest["title"] = title
    output = io.BytesIO()
    with c2pa.Builder(manifest, context=_context(c2pa)) as builder:
        for label, ingredient in zip(labels, ingredients, strict=True):
            description = {"relationship": ingredient.relationship, "label": label}
            if ingredient.title:
                description["title"] = ingredient.title
            builder.add_ingredient(
                description, ingredient.mime_type, io.BytesIO(ingredient.content)
            )
        builder.sign(signer, mime_type, io.BytesIO(content), output)
    return output.getvalue()


def sign_derived(
    content: bytes,
    mime_type: str,
    *,
    original: bytes,
    original_type: str,
    resized: bool,
    converted: bool,
    title: str = "",
) -> bytes:
    """Sign a derived file: the original as parent ingredient, then converted and/or resized.

    The manifest's first action is ``c2pa.opened`` on the parent (a C2PA 2 claim with a parent
    must open with it), followed by ``c2pa.converted`` when the format changed and
    ``c2pa.resized`` when the size did; each gives ``digitalSourceType`` trainedAlgorithmicMedia.
    """
    actions = [Action(action="c2pa.opened", ingredient=0)]
    if converted:
        actions.append(Action(action="c2pa.converted"))
    if resized:
        actions.append(Action(action="c2pa.resized"))
    parent = Ingredient(content=original, mime_type=original_type, title=title)
    return sign(content, mime_type, actions=actions, ingredients=[parent], title=title)


def summary(state: str, details: dict[str, Any] | None) -> str:
    """Return a one-line English summary of recorded credentials, for logs and commands."""
    details = details or {}
    who = details.get("issuer") or details.get("signer") or details.get("claim_generator") or ""
    text = str(state).replace("_", " ")
    return f"{text} ({who})" if who else text
