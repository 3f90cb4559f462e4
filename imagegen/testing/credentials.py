"""Content Credentials for tests: a throwaway certificate chain and images signed with it.

:func:`make_chain` builds a root, an intermediate and a signing certificate with
``cryptography`` (ECDSA P-256, valid from yesterday for ten years), as a C2PA validator wants
them: the signer has ``digitalSignature`` and the ``emailProtection`` extended key usage, the
CAs have path lengths. :func:`signed_image` gives an image a manifest signed with such a chain,
as a pretend provider would (``c2pa.created``, trainedAlgorithmicMedia), and :func:`tampered`
changes a file's pixels after signing, so its hash no longer matches::

    provider = make_chain("Pretend AI")
    png = signed_image(png_bytes(64, 64), "image/png", provider)
    api = MockAPI().reply(openai_image_response([png]))
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(OPENAI, api)},
        "CONTENT_CREDENTIALS": {"TRUST_ANCHORS": provider.root_pem},
    }

Everything here needs the ``c2pa`` extra (its ``cryptography`` dependency too) and, unlike the
rest of :mod:`imagegen.testing`, configured Django settings (signing goes through
:func:`imagegen.provenance.sign`, which reads ``IMAGEGEN``); nothing touches the network.
"""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from typing import Any

from imagegen.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    Action,
    c2pa_module,
    sign,
)

__all__ = ["Chain", "make_chain", "settings_for", "signed_image", "tampered"]


@dataclass(frozen=True)
class Chain:
    """A test PKI: the signer's chain and key, and the root that anchors it (PEM text)."""

    name: str
    #: The signing certificate followed by the intermediate, as C2PA signers send them.
    chain_pem: str
    key_pem: str
    root_pem: str

    def signer(self) -> Any:
        """Return a ``c2pa.Signer`` for this chain (ES256, no time-stamp authority)."""
        c2pa = c2pa_module()
        info = c2pa.C2paSignerInfo("es256", self.chain_pem.encode(), self.key_pem.encode(), None)
        return c2pa.Signer.from_info(info)


def make_chain(name: str = "Pretend Provider") -> Chain:
    """Return a new root, intermediate and signer for organization ``name``."""
    # Imported on use: cryptography comes with the c2pa extra, which these fakes need.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def subject(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            ]
        )

    def certificate(common_name, key, issuer_name, issuer_key, *, ca, path_length=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject(common_name))
            .issuer_name(subject(issuer_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if not ca:
            usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION])
            builder = builder.add_extension(usage, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    root_key, middle_key, signer_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "123")
    root = certificate(f"{name} Root CA", root_key, f"{name} Root CA", root_key, ca=True,
                       path_length=1)  # fmt: skip
    middle = certificate(f"{name} Intermediate CA", middle_key, f"{name} Root CA", root_key,
                         ca=True, path_length=0)  # fmt: skip
    leaf = certificate(f"{name} Signer", signer_key, f"{name} Intermediate CA", middle_key,
                       ca=False)  # fmt: skip

    def pem(cert: Any) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    key = signer_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return Chain(name=name, chain_pem=pem(leaf) + pem(middle), key_pem=key, root_pem=pem(root))


def settings_for(chain: Chain, **extra: Any) -> dict[str, Any]:
    """Return ``IMAGEGEN["CONTENT_CREDENTIALS"]`` that signs with ``chain`` (PEM text inline)."""
    return {"CERTIFICATE_CHAIN": chain.chain_pem, "PRIVATE_KEY": chain.key_pem, **extra}


def signed_image(
    content: bytes,
    mime_type: str,
    chain: Chain,
    *,
    generator: str = "Pretend-AI-API",
    version: str = "1.0",
) -> bytes:
    """Return ``content`` with a manifest a provider would write, signed with ``chain``.

    One ``c2pa.created`` action with ``digitalSourceType`` trainedAlgorithmicMedia, made by
    the claim generator ``generator`` ``version``.
    """
    created = Action(action="c2pa.created", digital_source_type=TRAINED_ALGORITHMIC_MEDIA)
    return sign(
        content,
        mime_type,
        actions=[created],
        signer=chain.signer(),
        claim_generator=(generator, version),
    )


def tampered(content: bytes) -> bytes:
    """Return the signed PNG ``content`` with one pixel changed and its manifest kept.

    The pixels are re-encoded with the top-left pixel inverted and the original's C2PA chunk
    (``caBX``) is put back after ``IHDR``: a good image whose hash no longer matches the one
    the manifest signed, as when a file is edited by a tool that keeps unknown chunks.
    """
    # Imported on use, as in imagegen.testing.images.
    from PIL import Image

    chunks = _png_chunks(content)
    manifest = [chunk for chunk in chunks if chunk[4:8] == b"caBX"]
    if not manifest:
        raise ValueError("tampered() takes a PNG with a C2PA manifest (a caBX chunk).")
    with Image.open(io.BytesIO(content)) as image:
        changed = image.convert("RGB")
    changed.putpixel((0, 0), tuple(255 - value for value in changed.getpixel((0, 0))))
    buffer = io.BytesIO()
    changed.save(buffer, format="PNG")
    fresh = _png_chunks(buffer.getvalue())
    return PNG_SIGNATURE + b"".join(fresh[:1] + manifest + fresh[1:])


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunks(content: bytes) -> list[bytes]:
    """Return the chunks of a PNG, each whole: length, type, data and CRC."""
    if not content.startswith(PNG_SIGNATURE):
        raise ValueError("Not a PNG.")
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(content):
        length = int.from_bytes(content[offset : offset + 4], "big")
        chunks.append(content[offset : offset + 12 + length])
        offset += 12 + length
    return chunks
