"""The gateway's set elements written over netlink (``setelements``) are the elements nft's own
text would have written, in the gateway's real table: the same keys, the same timeouts; a
transaction is all or nothing, and the kernel's refusal names the change it refused; a
withdrawal of thousands of grants (a flush) leaves none behind."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from protocols.registered.gateway import Gateway
from protocols.registered.setelements import ACK_WAIT_S, SetWriter

CHILD = """
import json, random, sys
from nftables import Nftables
from protocols.registered.gateway_flows import entry
from protocols.registered.messages import dotted
from protocols.registered.ruleset import TABLE, ruleset
from protocols.registered.setelements import Change, SetWriter

nft = Nftables()
nft.set_json_output(True)
assert nft.cmd(ruleset({"lo": ["198.19.1.0/29"]}, "198.18.128.1", ["198.18.0.0/18"]))[0] == 0
rng = random.Random(int(sys.argv[1]))

def listed(name):
    rc, out, err = nft.cmd(f"list set inet {TABLE} {name}")
    assert rc == 0, err
    for item in json.loads(out)["nftables"]:
        if "set" in item:
            return sorted(json.dumps(unexpiring(e), sort_keys=True)
                          for e in item["set"].get("elem", []))

def unexpiring(e):  # how long is left differs between two writes; the rest may not
    if isinstance(e, dict):
        return {k: unexpiring(v) for k, v in e.items() if k != "expires"}
    return e

def text(flow, kind, ms):  # the element as nft's text wrote it before
    src, dst, proto, sport, dport = flow
    name = entry(flow, kind)[0]
    key = f"{dotted(src)} . {dotted(dst)} . {sport}" if proto == 1 else \\
        f"{dotted(src)} . {dotted(dst)} . {proto} . {sport} . {dport}"
    return f"add element inet {TABLE} {name} {{ {key} timeout {ms}s }}"

flows = [(rng.getrandbits(32) or 1, rng.getrandbits(32) or 1, p, rng.getrandbits(16),
          0 if p == 1 else rng.getrandbits(16))
         for p in (rng.choice([1, 6, 17, 33, 132, 136]) for _ in range(300))]
seen = {}
for kind in ("grants", "denied"):  # one set written each way, then compared
    writer = SetWriter(TABLE)
    ms = {f: 1000 * rng.randint(60, 3600) for f in flows}
    refused = writer.apply([Change(True, *entry(f, kind), ms[f]) for f in flows])
    by_netlink = {n: listed(n) for n in (f"{kind}_l4", f"{kind}_icmp")}
    assert nft.cmd("\\n".join(f"flush set inet {TABLE} {n}" for n in by_netlink))[0] == 0
    rc, _, err = nft.cmd("\\n".join(text(f, kind, ms[f] // 1000) for f in flows))
    assert rc == 0, err
    by_text = {n: listed(n) for n in by_netlink}
    seen[kind] = {"refused": len(refused), "same": by_netlink == by_text,
                  "elements": sum(map(len, by_text.values()))}
# a transaction with one bad change: nothing of it applied, the bad one named
writer = SetWriter(TABLE)
before = listed("grants_l4")
new, absent = entry((1, 2, 6, 3, 4), "grants"), entry((1, 2, 6, 3, 5), "grants")
refused = writer.apply([Change(True, *new, 5000), Change(False, *absent)])
seen["atomic"] = {"refused": [[c.key == absent[1], code] for c, code in refused],
                  "unchanged": listed("grants_l4") == before}
# a flush withdraws thousands of grants at once: every one leaves the kernel
import collections, threading
from protocols.registered.gateway import Gateway
from protocols.registered.gateway_nft import replaced
many = [(0xC6124000 + k, 0xCB007102, 17, 40000 + k % 20000, 9300) for k in range(5000)]
for at in range(0, len(many), 300):
    assert not writer.apply([c for f in many[at:at + 300] for c in replaced(f, "grants", 60000)])
gw = Gateway.__new__(Gateway)
gw.sets, gw.nft_lock, gw.element_changes = writer, threading.RLock(), collections.deque()
gw.counters = collections.Counter()
gw._withdraw(many)
seen["withdrawn"] = {"left": len(listed("grants_l4")) - len(before),
                     "errors": gw.counters["nft error"]}
# a hold (a renewal's, an answer's): the element's timeout is the new one, whether this
# kernel changes it in place (one change) or not (three); the probe leaves nothing behind
gw.nft = nft
gw._open_sets()
probe_left = len(listed("grants_l4")) - len(before)
flow = (0xC6130102, 0xCB007102, 6, 40001, 443)
writer.apply(replaced(flow, "grants", 60000))
assert not gw.sets.apply(gw._held(flow, 2000))
timeouts = [json.loads(e)["elem"]["timeout"] for e in listed("grants_l4")  # the flow's own:
            if json.loads(e)["elem"]["val"]["concat"][::3] == [dotted(flow[0]), 40001]]
seen["held"] = {"probe_left": probe_left, "timeouts": timeouts, "in_place": gw.in_place}
print(json.dumps(seen))
"""


@pytest.mark.needs_root
def test_netlink_elements_are_nfts_own_and_a_refused_change_applies_nothing():
    seed = str(random.getrandbits(32))
    out = subprocess.run(["unshare", "--net", sys.executable, "-c", CHILD, seed],
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, (seed, out.stderr[-1500:])
    seen = json.loads(out.stdout)
    for kind in ("grants", "denied"):
        assert seen[kind]["refused"] == 0 and seen[kind]["elements"] == 300, seen
        assert seen[kind]["same"], seen
    assert seen["atomic"] == {"refused": [[True, 2]], "unchanged": True}  # ENOENT
    assert seen["withdrawn"] == {"left": 0, "errors": 0}  # one batch was too large a message
    assert seen["held"]["probe_left"] == 0 and seen["held"]["timeouts"] == [2], seen["held"]


def test_what_is_left_on_the_socket_is_read_without_waiting():
    """After an answer it could not read, the writer empties its socket; with the socket's
    timeout set, a read waits before it looks, so emptying took the whole 5 s wait while the
    writer held the table's lock."""
    writer = SetWriter.__new__(SetWriter)
    writer.sock, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    writer.sock.settimeout(ACK_WAIT_S)
    other.send(b"an ack past its wait")
    start = time.monotonic()
    writer._drain()
    assert time.monotonic() - start < ACK_WAIT_S / 5 and writer.sock.gettimeout() == ACK_WAIT_S
    with pytest.raises(TimeoutError):  # emptied, and waiting again as before
        writer.sock.settimeout(0.01)
        writer.sock.recv(100)


def test_the_in_place_probe_says_no_unless_both_its_writes_were_taken():
    """A first write lost and the second taken lists the probe at 1 s on any kernel: that is
    no evidence the kernel changed a timeout in place."""
    for refused_first, expected in ((True, False), (False, True)):
        gw = Gateway.__new__(Gateway)
        writes = []

        def apply(changes, refused_first=refused_first, writes=writes):
            writes.append(changes)
            return [(changes[0], 105)] if refused_first and len(writes) == 1 else []

        listing = iter(["x timeout 1m expires 59s y", "x timeout 1s expires 999ms y"])
        gw._nft_now = lambda command, quiet=False, listing=listing: (0, next(listing))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("protocols.registered.gateway_nft.SetWriter",
                          lambda table: SimpleNamespace(apply=apply))
            gw._open_sets()
        assert gw.in_place is expected
