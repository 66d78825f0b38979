"""The services probes talk to, identical under every architecture.

* web servers (``protocols.webserver``) on nodes with ``service="web"``, for their sites;
* resolvers (dnsmasq) on nodes with ``service="dns"``: the national one (which a censor can
  make lie) and the foreign one, both answering for every name from the same records;
* relays (``protocols.relay``) on nodes with ``service="relay"``.

``records`` is the ground truth ("control" in OONI's terms): what an uncensored resolver
answers. Probes compare what they were told against it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path

from topologies.addressing import UNROUTED
from topologies.graph import is_foreign, services, site_owner
from topologies.network import Daemon, EmulatedNetwork, NetworkError
from topologies.polling import STARTUP_S, wait_until

BOGUS = str(UNROUTED[1])  # where a lying resolver sends people: nowhere
SERVICE_NAMES = {"dns": "resolver", "relay": "relay"}


def catalogue(g) -> dict[str, str]:
    """Every name the resolvers know -> the node it belongs to (pure: graph only)."""
    names = dict(site_owner(g))
    for kind, label in SERVICE_NAMES.items():
        for node in services(g, kind):
            where = "abroad" if is_foreign(g, node) else "home"
            names[f"{label}-{node}.{where}.example"] = node
    return names


@dataclass
class Services:
    net: EmulatedNetwork
    records: dict[str, list[str]] = field(default_factory=dict)
    lies: dict[str, str] = field(default_factory=dict)
    certificate: tuple[str, str] = ("", "")

    def __post_init__(self) -> None:
        for name, node in catalogue(self.net.graph).items():
            self.records[name] = [self.net.address(node)]

    # -- who is where --------------------------------------------------------------------
    def resolver(self, foreign: bool = False) -> str | None:
        """The national (or foreign) resolver node, if the topology has one."""
        nodes = [n for n in services(self.net.graph, "dns")
                 if is_foreign(self.net.graph, n) == foreign]
        return nodes[0] if nodes else None

    def relays(self) -> list[str]:
        return services(self.net.graph, "relay")

    def sites(self) -> list[str]:
        return sorted(site_owner(self.net.graph))

    def owner(self, site: str) -> str:
        return site_owner(self.net.graph)[site]

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> Services:
        g, net = self.net.graph, self.net
        cert, key = self.certificate = self._certificate()
        started = []
        for node in services(g, "web"):
            sites = ",".join(g.nodes[node]["sites"])
            started.append((node, 80, net.start_daemon(Daemon(
                node, "web", [sys.executable, "-m", "protocols.webserver", node, sites, cert, key],
                log=net.workdir("services") / f"{node}-web.log"))))
        for node in services(g, "dns"):
            self._write_hosts(node)
            started.append((node, 53, net.start_daemon(Daemon(node, "dnsmasq", [
                "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                f"--addn-hosts={self._hosts_file(node)}", "--local=/example/",
                f"--listen-address={net.address(node)}", "--bind-interfaces",
                "--cache-size=0", f"--log-facility={net.workdir('services')}/{node}-dns.log",
                f"--pid-file={net.workdir('services')}/{node}-dnsmasq.pid"],
                log=net.workdir("services") / f"{node}-dnsmasq.out"))))
        for node, port, daemon in started:
            self._wait(node, port, daemon)
        for node in self.relays():
            self.start_relay(node)
        return self

    def start_relay(self, node: str, resolver: str | None = None) -> None:
        """A relay (``protocols.relay``) on ``node``, resolving through ``resolver`` (by
        default the foreign resolver abroad, the national one at home)."""
        foreign = is_foreign(self.net.graph, node)
        resolver = resolver or self.resolver(foreign=foreign) or self.resolver(not foreign)
        if resolver is None:
            raise NetworkError("a relay needs a resolver in the topology")
        cert, key = (self.net.give(node, Path(f)) for f in self.certificate)
        daemon = self.net.start_daemon(Daemon(
            node, "relay", [sys.executable, "-m", "protocols.relay",
                            self.net.address(resolver), cert, key],
            log=self.net.workdir("services") / f"{node}-relay.log"))
        self._wait(node, 8080, daemon)

    def _certificate(self) -> tuple[str, str]:
        d = self.net.workdir("services")
        cert, key = d / "cert.pem", d / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=splinterlab", "-keyout", str(key), "-out",
                        str(cert)], check=True, capture_output=True)
        return str(cert), str(key)

    def _wait(self, node: str, port: int, daemon: Daemon) -> None:
        def started() -> bool:
            if self.net.listening(node, port, udp=port == 53):
                return True
            if daemon.process and daemon.process.poll() is not None:
                raise NetworkError(f"the {daemon.name} service on {node} died: {_tail(daemon)}")
            return False

        if not wait_until(started, STARTUP_S):
            raise NetworkError(f"the {daemon.name} service on {node} did not start in "
                               f"{STARTUP_S:g} s: {_tail(daemon)}")

    # -- DNS records -----------------------------------------------------------------------
    def _hosts_file(self, node: str):
        return self.net.workdir("services") / f"{node}.hosts"

    def _write_hosts(self, node: str) -> None:
        lie = {} if is_foreign(self.net.graph, node) else self.lies
        lines = []
        for name, addresses in sorted(self.records.items()):
            for address in [lie[name]] if name in lie else addresses:
                lines.append(f"{address} {name}")
        self._hosts_file(node).write_text("\n".join(lines) + "\n")

    def _reload_dns(self) -> None:
        for daemon in self.net.daemons:
            if daemon.name == "dnsmasq" and daemon.process:
                self._write_hosts(daemon.node)
                self.net.signal(daemon, 1)  # SIGHUP: dnsmasq re-reads its hosts files

    def set_lies(self, names: dict[str, str]) -> None:
        """Make the national resolver answer ``name -> address`` (empty: tell the truth)."""
        self.lies = dict(names)
        self._reload_dns()

    def move_site(self, site: str) -> str:
        """The site's operator renumbers: its server adds a spare address of its own line and
        both resolvers publish it instead. Returns the new address."""
        node = self.owner(site)
        (intf,) = self.net.plan.interfaces_of(node)
        current = set(self.records[site])
        spare = next(str(a) for a in list(intf.address.network.hosts())[2:]
                     if str(a) not in current)
        self.net.exec(node, "ip", "addr", "add",
                      str(IPv4Interface(f"{spare}/{intf.address.network.prefixlen}")),
                      "dev", intf.name)
        self.records[site] = [spare]
        self._reload_dns()
        return spare


def _tail(daemon: Daemon) -> str:
    return daemon.log.read_text()[-300:].strip() if daemon.log and daemon.log.exists() else ""
