"""A web connectivity probe in the manner of OONI's web_connectivity, run from a host.

Three steps with real clients: look the site up (``dig @resolver``), connect, fetch the page
(``curl``). The first step that fails names the failure:

``dns``     no answer, or an answer that disagrees with the control records (a lying resolver)
``tcp_ip``  no TCP connection could be made (dropped, refused, unreachable)
``http``    connected, but no correct page came back (reset, timeout, wrong status or site)

Methods are the ways a host can try: ``direct`` (national resolver), ``foreign_resolver``,
``relay`` (plain HTTP CONNECT through a foreign relay, which resolves the name itself) and
``tunnel`` (the same proxy inside TLS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.relay import PLAIN_PORT, TLS_PORT

METHODS = ("direct", "foreign_resolver", "relay", "tunnel")
CURL_COULDNT_CONNECT, CURL_TIMEOUT = 7, 28
_QUERY_TIME = re.compile(r"Query time: (\d+) msec")
_IPV4 = re.compile(r"\bIN\s+A\s+(\d+\.\d+\.\d+\.\d+)")
_WRITE_OUT = re.compile(r"##(\d+) ([\d.]+) ([\d.]+)$")


@dataclass(frozen=True)
class WebResult:
    host: str
    site: str
    method: str
    label: str | None  # None: the page came back
    addresses: tuple[str, ...] = ()
    dns_ms: float | None = None
    connect_ms: float | None = None
    total_ms: float | None = None
    status: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.label is None


def lookup(net, host: str, name: str, resolver: str,
           timeout: float = 2.0) -> tuple[list[str] | None, float | None]:
    """Addresses a resolver gives ``host`` for ``name`` (None: no answer) and the query time."""
    out = net.exec(host, "dig", f"@{resolver}", name, "A", "+noall", "+answer", "+stats",
                   f"+time={max(1, int(timeout))}", "+tries=1", check=False,
                   timeout=timeout + 10).stdout
    query = _QUERY_TIME.search(out)
    if query is None:
        return None, None
    return _IPV4.findall(out), float(query.group(1))


def fetch(net, host: str, site: str, address: str | None = None, proxy: str | None = None,
          timeout: float = 3.0) -> tuple[str | None, int | None, float | None, float | None,
                                         str]:
    """(label, status, connect ms, total ms, detail) of one HTTP fetch of ``site``."""
    argv = ["curl", "-sS", "-o", "-", "-w", "\n##%{http_code} %{time_connect} %{time_total}",
            "--connect-timeout", f"{timeout:g}", "-m", f"{2 * timeout:g}"]
    if address:
        argv += ["--resolve", f"{site}:80:{address}"]
    if proxy:
        argv += ["-p", "-x", proxy, "--proxy-insecure"]
    result = net.exec(host, *argv, f"http://{site}/", check=False, timeout=2 * timeout + 10)
    tail = _WRITE_OUT.search(result.stdout)
    status, connect, total = (int(tail.group(1)), float(tail.group(2)) * 1000,
                              float(tail.group(3)) * 1000) if tail else (None, 0.0, None)
    detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    if result.returncode == 0 and status == 200 and f"<h1>{site}</h1>" in result.stdout:
        return None, status, connect, total, ""
    if result.returncode == 0:
        detail = detail or f"HTTP {status}, not the page of {site}"
    # curl 7: no connection (refused, unreachable); 28 before connecting: SYNs unanswered.
    # Anything else happened on an established connection (a reset, a timeout mid-transfer).
    no_connection = result.returncode == CURL_COULDNT_CONNECT or (
        result.returncode == CURL_TIMEOUT and not connect)
    label = "tcp_ip" if no_connection else "http"
    return label, status, connect or None, total, detail or f"curl exit {result.returncode}"


def web_probe(net, services, host: str, site: str, method: str = "direct",
              timeout: float = 3.0, relay: str | None = None) -> WebResult:
    """``relay``: the node to relay through (default: the first relay abroad)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    control = set(services.records.get(site, ()))
    if method in ("relay", "tunnel"):
        relay = net.address(relay or services.relays()[0])
        proxy = (f"http://{relay}:{PLAIN_PORT}" if method == "relay"
                 else f"https://{relay}:{TLS_PORT}")
        label, status, connect, total, detail = fetch(net, host, site, proxy=proxy,
                                                      timeout=timeout)
        return WebResult(host, site, method, label, (), None, connect, total, status, detail)
    resolver = services.resolver(foreign=method == "foreign_resolver")
    addresses, dns_ms = lookup(net, host, site, net.address(resolver), timeout)
    if addresses is None:
        return WebResult(host, site, method, "dns", detail=f"no answer from {resolver}")
    if not addresses or not set(addresses) <= control:
        return WebResult(host, site, method, "dns", tuple(addresses), dns_ms,
                         detail=f"{resolver} answered {addresses or 'nothing'}, control "
                                f"{sorted(control)}")
    label, status, connect, total, detail = fetch(net, host, site, addresses[0], timeout=timeout)
    return WebResult(host, site, method, label, tuple(addresses), dns_ms, connect, total,
                     status, detail)
