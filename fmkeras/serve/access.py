"""Who may talk to the server: Host allow-list, browser Origin, optional bearer token.

A server on 127.0.0.1 is still reachable from any web page the user opens: the page can POST
(a "simple" request needs no CORS preflight) and, with DNS rebinding, even read the answer.
Requests whose Host is not an allowed name or that carry a foreign Origin are refused (403), so
neither works. Beyond loopback, a bearer token (`serve.auth_token_file`) is the only gate; it
is compared with hmac.compare_digest so its bytes cannot be guessed from response times.
"""
from __future__ import annotations

import hmac
import ipaddress

from fmkeras.config import ServeConfig
from fmkeras.serve.status import InvalidArgument, PermissionDenied, Unauthenticated, UnsupportedMediaType

def is_loopback(host: str) -> bool:
    """True when `host` (a bind address or name) only accepts connections from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(cfg: ServeConfig):
    """The warning to print when the server is reachable from other machines, else None."""
    if is_loopback(cfg.host):
        return None
    auth = ("requests need the bearer token from --auth_token_file, but travel unencrypted (no TLS)"
            if cfg.auth_token_file else "there is NO authentication: anyone who can reach this port can query the "
                                        "model (set --auth_token_file)")
    return (f"warning: listening on {cfg.host}, reachable from other machines; {auth}. Only Host names in "
            f"serve.allowed_hosts ({', '.join(cfg.allowed_hosts)}) are answered: add the names clients use.")


def read_token(path: str) -> bytes:
    """The bearer token in `path` (surrounding whitespace removed); ValueError if it is empty."""
    with open(path, "rb") as fh:
        token = fh.read().strip()
    if not token:
        raise ValueError(f"serve.auth_token_file {path} is empty")
    return token


def host_name(header: str) -> str:
    """The name part of a Host header: 'example.com:8501' -> 'example.com', '[::1]:80' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def check_content_type(headers):
    """Predict bodies are JSON: a browser's form or text/plain POST (no CORS preflight needed) is refused."""
    ctype = headers.get("Content-Type")
    if ctype is None:
        if headers.get("Origin") is not None:
            raise UnsupportedMediaType("predict needs Content-Type: application/json")
        return  # curl and scripts often send none
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(f"predict needs Content-Type: application/json, got {ctype[:60]!r} "
                                   f"(curl -d sends a form type: add -H 'Content-Type: application/json')")


class AccessPolicy:
    """`check(headers)` raises PermissionDenied / Unauthenticated for a request that must not be served."""

    def __init__(self, cfg: ServeConfig):
        self.token = read_token(cfg.auth_token_file) if cfg.auth_token_file else None
        self.hosts = {h.lower().strip("[]") for h in cfg.allowed_hosts} | {cfg.host.lower().strip("[]")}
        self.origins = tuple(cfg.allowed_origins)

    def check(self, headers):
        """Host allow-list, foreign Origin and bearer token, before a byte of the body is read."""
        if len(headers.get_all("Host") or ()) > 1:  # which one would a proxy, or this check, believe?
            raise InvalidArgument("more than one Host header")
        host = headers.get("Host")
        if host is not None and "*" not in self.hosts and host_name(host) not in self.hosts:
            raise PermissionDenied(f"Host {host[:100]!r} is not in serve.allowed_hosts")
        origin = headers.get("Origin")
        if origin is not None and origin not in self.origins and "*" not in self.origins:
            raise PermissionDenied(f"requests from browser origin {origin[:100]!r} are not allowed "
                                   f"(serve.allowed_origins)")
        if self.token is not None:
            scheme, _, given = (headers.get("Authorization") or "").partition(" ")
            # compare_digest takes as long whatever the first differing byte (no timing oracle)
            if not (scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8", "replace"),
                                                                        self.token)):
                raise Unauthenticated("missing or wrong bearer token")
