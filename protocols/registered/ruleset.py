"""The gateway's nftables table (``inet splinter_gw``): nothing to or from its hosts passes
without a live grant for its flow, whichever side started it.

For a packet between a host line and the rest of the network, in order:

* anti-spoofing: from a host line, only that line's addresses (``spoofed``);
* the policy's hard lines, both ways: cut (revoked) addresses, blocked destinations, and in a
  region shut down everything but its essential list;
* only registered hosts: from or to an address not bound on its line is dropped (a packet
  between two hosts of this gateway is judged once, from the sender's side, with both ends'
  bindings and cuts checked; one admission covers both, the authority checking both people);
* ICMP errors about flows (conntrack's ``related``) are no flow of their own: dropped; so is
  what conntrack cannot place in any flow (``invalid``: a stray SYN-ACK, an echo reply nobody
  asked for), which would otherwise pass for a reply and be asked about in the host's name;
* a flow is of a protocol with ports (TCP, UDP, UDP-Lite, SCTP, DCCP) or an ICMP echo;
  anything else (a tunnel, GRE, ICMP of another type) is no flow anyone admits: dropped
  (``protocol``, ``icmp_type``);
* a grant for the flow: grants are set elements keyed by the flow's initiator, responder,
  protocol and both ports (``grants_l4``; an echo by its identifier, ``grants_icmp``), with
  the admission TTL less a renewal margin as timeout (a packet after that goes to the
  gateway, which lets it through while the grant lives: the flow is in use, and is renewed
  before its grant runs out). One grant is one flow: another source port is
  another flow, asked about on its own. A packet in the flow's own direction must match the
  key as it is, a reply (conntrack's ``reply`` direction) the key reversed, so a grant for
  A:40000 -> B:80 lets B answer from port 80 to 40000 but does not let B start anything
  towards A;
* anything else is marked by direction (from or to the host) and conntrack direction and sent
  to NFQUEUE (iptables, in a chain of its own, since nftables' own ``queue`` is not in every
  kernel): the gateway asks the authority, about a new flow or one whose grant ran out, and
  gives the verdict.

Before any of it: the network is IPv4, so IPv6 from or to a host line is dropped (``ipv6``;
the ``inet`` table would otherwise let it by every ``ip`` match), and so is anything from a
host to the control plane, the authority or any router (``control``): the authority refuses
to admit such flows too. A block is both ways: a blocked address is no destination and
starts nothing.

To the gateway itself a host may send only registration requests (UDP 7401), at most
``SERVICE_RATE`` a second from each address (a flood costs the authority nothing), and they
are refused from anywhere else; its control port (UDP 7402) hears the authority's address
alone (``control_elsewhere``), so a flood at it never reaches the process.
"""

from __future__ import annotations

from .messages import GATEWAY_PORT, PROTOCOLS, SERVICE_PORT
from .messages import PORTED as PORTED_NUMBERS

TABLE = "splinter_gw"
QUEUE = 100
# packet from / to the host, in its flow's own direction or as a reply
MARK_OUT, MARK_OUT_REPLY, MARK_IN, MARK_IN_REPLY = 0x5A1, 0x5A2, 0x5A3, 0x5A4
MARKS = (MARK_OUT, MARK_OUT_REPLY, MARK_IN, MARK_IN_REPLY)
COUNTERS = ("spoofed", "unregistered", "cut", "blocked", "shut", "denied", "related",
            "invalid", "not_service", "service_elsewhere", "service_flood", "ipv6", "control",
            "control_elsewhere", "protocol", "icmp_type")
PORTED = ", ".join(PROTOCOLS[p] for p in sorted(PORTED_NUMBERS))  # by name, for nft
CHAIN = "SPLINTER_GW"
SERVICE_RATE = "10/second burst 20 packets"


def ruleset(lines: dict[str, list[str]], authority: str, infrastructure: list[str]) -> str:
    """The table, empty of bindings and grants. ``lines``: host interface -> the prefixes its
    hosts send from (the line's, and a device farm's block); ``authority``: its address;
    ``infrastructure``: the control plane's prefixes."""
    control = ", ".join(infrastructure)
    control_set = f" elements = {{ {control} }};" if control else ""
    ifaces = ", ".join(f'"{i}"' for i in lines)
    # one rule per line rather than a set of (interface, prefix): such a set (a concatenation
    # with intervals) is the kernel's most intricate set type, and a gateway has a few lines
    own_line = "\n".join(f'    iifname "{i}" ip saddr != {{ {", ".join(nets)} }} counter '
                         "name spoofed drop" for i, nets in lines.items())
    counters = "\n".join(f"  counter {name} {{}}" for name in COUNTERS)
    l4 = "ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service"
    echo = "typeof ip saddr . ip daddr . icmp id"
    return f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
{counters}
  set hostifs {{ type ifname; elements = {{ {ifaces} }}; }}
  set bound {{ type ifname . ipv4_addr; }}
  set cut {{ type ipv4_addr; }}
  set blocked {{ type ipv4_addr; flags interval; }}
  set essential {{ type ipv4_addr; flags interval; }}
  set grants_icmp {{ {echo}; flags timeout; }}
  set grants_l4 {{ type {l4}; flags timeout; }}
  set denied_icmp {{ {echo}; flags timeout; }}
  set denied_l4 {{ type {l4}; flags timeout; }}
  set service_rate {{ type ipv4_addr; size 65536; flags dynamic,timeout; timeout 10s; }}
  set infrastructure {{ type ipv4_addr; flags interval;{control_set} }}
  chain forward {{
    type filter hook forward priority -10; policy accept;
    meta nfproto ipv6 iifname @hostifs counter name ipv6 drop
    meta nfproto ipv6 oifname @hostifs counter name ipv6 drop
    iifname @hostifs jump from_host
    oifname @hostifs jump to_host
  }}
  chain own_line {{
{own_line}
  }}
  chain from_host {{
    jump own_line
    ip daddr @infrastructure counter name control drop
    ip saddr @cut counter name cut drop
    ip daddr @cut counter name cut drop
    iifname . ip saddr != @bound counter name unregistered drop
    oifname @hostifs oifname . ip daddr != @bound counter name unregistered drop
    ip daddr @blocked counter name blocked drop
    ip saddr @blocked counter name blocked drop
    jump shutdown_out
    ct state related counter name related drop
    ct state invalid,untracked counter name invalid drop
    jump admitted
    ct direction original meta mark set {MARK_OUT:#x} accept
    ct direction reply meta mark set {MARK_OUT_REPLY:#x} accept
    counter name invalid drop
  }}
  chain to_host {{
    ip daddr @cut counter name cut drop
    oifname . ip daddr != @bound counter name unregistered drop
    ip saddr @blocked counter name blocked drop
    ip daddr @blocked counter name blocked drop
    jump shutdown_in
    ct state related counter name related drop
    ct state invalid,untracked counter name invalid drop
    jump admitted
    ct direction original meta mark set {MARK_IN:#x} accept
    ct direction reply meta mark set {MARK_IN_REPLY:#x} accept
    counter name invalid drop
  }}
  chain admitted {{
    meta l4proto {{ {PORTED} }} goto admitted_l4
    meta l4proto != icmp counter name protocol drop
    icmp type != {{ echo-request, echo-reply }} counter name icmp_type drop
    ct direction original ip saddr . ip daddr . icmp id @grants_icmp accept
    ct direction reply ip daddr . ip saddr . icmp id @grants_icmp accept
    ct direction original ip saddr . ip daddr . icmp id @denied_icmp counter name denied drop
    ct direction reply ip daddr . ip saddr . icmp id @denied_icmp counter name denied drop
  }}
  chain admitted_l4 {{
    ct direction original ip saddr . ip daddr . meta l4proto . th sport . th dport \\
      @grants_l4 accept
    ct direction reply ip daddr . ip saddr . meta l4proto . th dport . th sport \\
      @grants_l4 accept
    ct direction original ip saddr . ip daddr . meta l4proto . th sport . th dport \\
      @denied_l4 counter name denied drop
    ct direction reply ip daddr . ip saddr . meta l4proto . th dport . th sport \\
      @denied_l4 counter name denied drop
  }}
  chain shutdown_out {{
  }}
  chain shutdown_in {{
  }}
  chain input {{
    type filter hook input priority -10; policy accept;
    meta nfproto ipv6 iifname @hostifs counter name ipv6 drop
    iifname @hostifs jump host_to_gateway
    udp dport {SERVICE_PORT} counter name service_elsewhere drop
    udp dport {GATEWAY_PORT} ip saddr != {authority} counter name control_elsewhere drop
  }}
  chain host_to_gateway {{
    jump own_line
    udp dport {SERVICE_PORT} update @service_rate {{ ip saddr limit rate over {SERVICE_RATE} }} \\
      counter name service_flood drop
    udp dport {SERVICE_PORT} accept
    counter name not_service drop
  }}
}}
"""


def shutdown_rules(on: bool) -> str:
    """The two shutdown chains, emptied, and filled if ``on``: one transaction."""
    lines = []
    for chain, field_ in (("shutdown_out", "daddr"), ("shutdown_in", "saddr")):
        lines.append(f"flush chain inet {TABLE} {chain}")
        if on:
            lines.append(f"add rule inet {TABLE} {chain} ip {field_} != @essential "
                         "counter name shut drop")
    return "\n".join(lines)


# declaring the chain empties it, so a restarted gateway does not queue everything twice;
# FORWARD jumps to it once (the border's censor has its own rules there)
QUEUE_RULES = f"*filter\n:{CHAIN} - [0:0]\n" + "".join(
    f"-A {CHAIN} -m mark --mark {mark:#x} -j NFQUEUE --queue-num {QUEUE}\n"
    for mark in MARKS) + "COMMIT\n"
