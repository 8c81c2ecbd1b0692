"""Fails any attempt to reach a host that is not this machine.

An audit hook (PEP 578) sees every ``socket.getaddrinfo`` and ``socket.connect`` made from
Python code, the OpenAI SDK's httpx, slack_sdk's urllib and aiohttp included. Loopback
addresses and unix sockets pass; anything else raises :class:`RealNetworkCall` and is
recorded, and the test that made it fails at teardown even if the caller swallowed the
error. Nothing is patched.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

__all__ = ["RealNetworkCall", "install", "take_violations"]

_violations: list[str] = []
_installed = False
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


class RealNetworkCall(ConnectionRefusedError):
    """Raised instead of reaching a real host from a test."""


def _name(host: Any) -> str:
    if isinstance(host, bytes):
        return host.decode(errors="replace")
    return "" if host is None else str(host)


def _is_local(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        sock, address = args
        if getattr(sock, "family", None) == socket.AF_UNIX or not isinstance(address, tuple):
            return
        host = address[0]
    else:
        return
    host = _name(host)
    if not _is_local(host):
        message = f"test tried to reach a real host: {host!r} ({event})"
        _violations.append(message)
        raise RealNetworkCall(message)


def install() -> None:
    """Install the hook once per process (audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def take_violations() -> list[str]:
    """The attempts recorded since the last call, then forgets them."""
    found = list(_violations)
    _violations.clear()
    return found
