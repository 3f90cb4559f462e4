"""Which result URLs may be fetched: the host allow-list and the public-address (SSRF) check.

A URL passes when it is ``https``, carries no user name or password, and names a host on the
provider's allow-list (OPTIONS ``download_hosts``: exact hosts and ``*.suffix`` wildcards); the
address it is then fetched from must be public. An IPv6 form that embeds an IPv4 address is
judged by that address too, and the cloud metadata address is refused even for local tests.
Every refusal has its own error code, and no message quotes a query string: signed result URLs
are secrets.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx

from imagegen.exceptions import (
    InvalidProviderError,
    InvalidResponse,
    ProviderError,
    ProviderUnavailable,
)

__all__ = [
    "Fail",
    "HostPatterns",
    "Resolver",
    "UrlGuard",
    "address_refusal",
    "display_url",
    "is_address",
    "resolve",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Returns every address DNS gives for ``(host, port)``, as strings.
Resolver = Callable[[str, int], Sequence[str]]
#: Builds an exception in a provider's name, its message redacted:
#: ``fail(cls, code, message, **kwargs)`` (:meth:`HttpProvider.fail
#: <imagegen.providers.http.HttpProvider.fail>`).
Fail = Callable[..., ProviderError]

#: Cloud instance-metadata endpoints (AWS, GCP, Azure; AWS's IPv6 one): refused even for tests.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_KINDS = ("loopback", "link_local", "multicast", "unspecified", "reserved", "private")


def resolve(host: str, port: int) -> list[str]:
    """Return every address DNS gives for ``host``, in the resolver's order, without repeats."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


def address_refusal(address: IPAddress) -> str | None:
    """Return why ``address`` must not be fetched from ("loopback", "metadata", ...), or None."""
    # An IPv6 form can smuggle an IPv4 address: judge the embedded one too.
    embedded = address.ipv4_mapped or address.sixtofour if address.version == 6 else None
    if address.version == 6 and address in _NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in METADATA_ADDRESSES or embedded in METADATA_ADDRESSES:
        return "metadata"
    for candidate in (embedded, address):
        for kind in _KINDS:
            if candidate is not None and getattr(candidate, f"is_{kind}"):
                return kind.replace("_", "-")
    # Shared (carrier-grade NAT) and other special ranges are neither private nor global.
    return None if address.is_global else "non-public"


def display_url(url: httpx.URL) -> str:
    """Return ``url`` fit for a message: no user info, query or fragment, the path shortened."""
    path = url.path if len(url.path) <= 80 else url.path[:79] + "…"
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{host}{port}{path}"


def is_address(host: str) -> bool:
    """Return whether ``host`` is an IP address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPatterns:
    """An allow-list of hosts: exact names and ``*.suffix`` wildcards (any depth, not the apex)."""

    exact: frozenset[str]
    suffixes: tuple[str, ...]

    @classmethod
    def parse(cls, hosts: Iterable[str]) -> HostPatterns:
        """Return the allow-list for ``hosts``; raise ``ValueError`` for a malformed entry."""
        if isinstance(hosts, str):
            raise ValueError("it must be a list of host names, not one string")
        exact, suffixes = set(), []
        for entry in hosts:
            if not isinstance(entry, str) or not entry.strip(". ") or "/" in entry:
                raise ValueError(f"{entry!r} is not a host name or a *.suffix wildcard")
            host = entry.strip().rstrip(".").lower()
            if host.startswith("*."):
                suffixes.append(host[1:])
            elif "*" in host:
                raise ValueError(f"{entry!r}: a wildcard may only be a leading '*.'")
            else:
                exact.add(host)
        return cls(frozenset(exact), tuple(suffixes))

    def allows(self, host: str) -> bool:
        """Return whether ``host`` (an ASCII host name or address) is on the list."""
        host = host.rstrip(".").lower()
        return host in self.exact or host.endswith(self.suffixes)


class UrlGuard:
    """Checks result URLs and their addresses for one provider, raising its errors.

    ``name`` is the provider's name in messages, ``config_path`` where its OPTIONS are set, and
    ``fail`` builds its exceptions. ``allow_private=True`` (OPTIONS ``allow_private_downloads``)
    also accepts plain ``http`` and loopback or private addresses, for local test servers only;
    the host must still be on the allow-list, and the cloud metadata address stays refused.
    ``resolver`` (an argument, or an attribute set before the first check) lets tests replace
    DNS.
    """

    def __init__(
        self,
        *,
        name: str,
        config_path: str,
        fail: Fail,
        hosts: Iterable[str],
        allow_private: bool = False,
        resolver: Resolver = resolve,
    ) -> None:
        self.name = name
        self.config_path = config_path
        self.fail = fail
        try:
            self.hosts = HostPatterns.parse(hosts)
        except ValueError as err:
            raise InvalidProviderError(
                f'OPTIONS["download_hosts"] of {config_path}: {err}.'
            ) from err
        self.allow_private = bool(allow_private)
        self.resolver = resolver

    def checked_url(self, raw: str, *, hop_from: httpx.URL | None = None) -> httpx.URL:
        """Return ``raw`` as a URL if it may be fetched; raise ``InvalidResponse`` if not.

        With ``hop_from``, ``raw`` is a redirect's ``Location`` and any refusal is coded
        ``download_redirect_refused``; otherwise each refusal has its own ``download_*`` code.
        """
        # A bad hop is a refused redirect whatever its fault: the provider's URL was fine.
        try:
            url = httpx.URL(raw) if hop_from is None else hop_from.join(raw)
        except httpx.InvalidURL as err:
            code = "download_invalid_url" if hop_from is None else "download_redirect_refused"
            message = f"{self.name} sent a result URL or redirect that cannot be parsed."
            raise self.fail(InvalidResponse, code, message) from err
        shown = display_url(url)
        schemes = ("https", "http") if self.allow_private else ("https",)
        problem = code = ""
        if url.scheme not in schemes or not url.host:
            problem, code = "it is not an https URL", "download_not_https"
        elif url.userinfo:
            problem, code = "it carries a user name or password", "download_invalid_url"
        elif not self.hosts.allows(url.raw_host.decode("ascii")):
            problem = (
                f"{url.host} is not on the provider's download allow-list; add it to "
                f'OPTIONS["download_hosts"] of {self.config_path} '
                "if you trust it"
            )
            code = "download_host_not_allowed"
        if not problem:
            return url
        if hop_from is not None:
            message = (
                f"{self.name} redirected the download to {shown}, which is refused: {problem}."
            )
            raise self.fail(InvalidResponse, "download_redirect_refused", message)
        message = f"imagegen refused to download {shown} from {self.name}: {problem}."
        raise self.fail(InvalidResponse, code, message)

    def vetted_address(self, url: httpx.URL) -> str:
        """Return the address to connect to for ``url``, once every address DNS gives is public."""
        host = url.raw_host.decode("ascii")
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
            answers = [host] if is_address(host) else self.resolver(host, port)
            addresses = [ipaddress.ip_address(answer.split("%")[0]) for answer in answers]
        except (OSError, ValueError) as err:
            message = f"Could not resolve {url.host} to download {self.name}'s result."
            raise self.fail(ProviderUnavailable, "download_failed", message) from err
        if not addresses:
            message = f"{url.host} has no address to download {self.name}'s result from."
            raise self.fail(ProviderUnavailable, "download_failed", message)
        for address in addresses:
            refusal = address_refusal(address)
            if refusal and (refusal == "metadata" or not self.allow_private):
                article = "an" if refusal[0] in "aeiou" else "a"
                message = (
                    f"imagegen refused to download {display_url(url)} from {self.name}: "
                    f"{url.host} resolves to {address}, {article} {refusal} address."
                )
                raise self.fail(InvalidResponse, "download_private_address", message)
        return str(addresses[0])
