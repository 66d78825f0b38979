"""Why an end node stays cut off, in one text: what one would look at on the node, its
router and every router's table, for an error message.

A mixin of ``network.EmulatedNetwork``.
"""

from __future__ import annotations

import subprocess

from .graph import is_router, natural_key


class Diagnosis:
    def line_state(self, end: str) -> str:
        """What one would look at when an end node stays cut off: its address, routes and
        neighbours; on its router the line's link, route and neighbour, the end-node lines it
        has no route to, the packets each netfilter rule and the delay path's queues took, and
        the conntrack count. One line per command, for an error message. (What the
        architecture's own daemons say is its ``diagnose``.)"""
        (intf,) = self.plan.interfaces_of(end)
        router, line = intf.peer, self.plan.intf(intf.peer, end).name
        commands = [(end, ["ip", "-br", "-4", "addr"]), (end, ["ip", "-4", "route"]),
                    (end, ["ip", "neigh"]),
                    (router, ["ip", "-br", "link", "show", "dev", line]),
                    (router, ["ip", "-4", "route", "get", self.address(end)]),
                    (router, ["ip", "neigh", "show", "dev", line]),
                    (router, ["sh", "-c", "iptables -w -t mangle -nvxL; iptables -w -nvxL"]),
                    (router, ["nft", "list", "counters"]),
                    (router, ["conntrack", "-C"])]
        out = []
        for node, argv in commands:
            try:
                r = self.exec(node, *argv, check=False, privileged=True, timeout=10)
                text = (r.stdout + r.stderr).strip()
            except subprocess.TimeoutExpired:
                text = "(timed out)"
            if argv[0] in ("sh", "nft"):  # only what counted something
                text = " ; ".join(w for w in text.splitlines() if (
                    "NFQUEUE" in w or "DROP" in w or "Chain" in w or "packets" in w)
                    and " 0 bytes 0" not in w)
            out.append(f"{node}$ {' '.join(argv[-2:])}: {' | '.join(text.splitlines())}")
        table = self.exec(router, "ip", "-4", "route", "show", check=False).stdout
        have = {line.split()[0] for line in table.splitlines() if line.strip()}
        lost = [e for e in self.end_nodes() if str(self.plan.line(e)) not in have]
        out.append(f"{router} has no route to the lines of: {', '.join(lost) or 'none'}")
        prefix = str(self.plan.line(end))
        blind = [r for r in sorted(self.graph, key=natural_key) if is_router(self.graph, r)
                 and not self.exec(r, "ip", "-4", "route", "show", prefix,
                                   check=False).stdout.strip()]
        out.append(f"routers with no route to {end}'s line {prefix}: {', '.join(blind) or 'none'}")
        if self.delay is not None:
            queues = self.delay.stats().get("namespaces", {}).get(router, {}).get("queues")
            out.append(f"delay path queues on {router} (number: packets, most held): {queues}")
        return "\n".join(out)
