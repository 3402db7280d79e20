"""The origin rule: every request goes to the configured service's scheme, host and port.

Links a service hands back (`@odata.nextLink`, `@odata.deltaLink`) and links read from
state (cursors) are followed only when they name the service's own origin; anything else
is refused before a byte (or the bearer token) is sent. OData calls delta links "opaque,
service-generated links" (OData 4.0, via learn.microsoft.com "Track entity data changes
with change tracking and the Web API"): opaque to read, but not to be trusted for where
they point.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from p2c_core.errors import PermanentError

_DEFAULT_PORTS = {"http": 80, "https": 443}


class ForeignOriginError(PermanentError):
    """A link or request names another origin than the configured service's: not sent."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str | httpx.URL) -> Origin:
        """The origin of an absolute URL (default ports made explicit, host lower case)."""
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        scheme = parsed.scheme.lower()
        port = parsed.port or _DEFAULT_PORTS.get(scheme, 0)
        return cls(scheme, parsed.host.lower(), port)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def check(self, url: str | httpx.URL, *, service: str, what: str = "request") -> None:
        """Raise ForeignOriginError unless `url` (absolute) is of this origin."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except httpx.InvalidURL:
            raise ForeignOriginError(f"{what} is not a URL: refused", service=service) from None
        if not parsed.is_absolute_url:
            raise ForeignOriginError(f"{what} has no origin: refused", service=service)
        found = Origin.of(parsed)
        if found != self:
            raise ForeignOriginError(f"{what} names a foreign origin {found} (not {self}): refused", service=service)


def is_absolute(link: str) -> bool:
    """An absolute or scheme-relative link (`https://x/...`, `//x/...`): it names an origin."""
    try:
        parsed = httpx.URL(link)
    except httpx.InvalidURL:
        return True  # not a path either: let the origin check refuse it
    return bool(parsed.scheme) or bool(parsed.host) or link.startswith("//")
