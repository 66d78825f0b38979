"""The DNS poll that times a name block keeps its schedule when a censor drops the queries:
cut_time needs 20 unanswered queries after the last answer to call a stream stopped, and a
poll that waited for each answer sent about one in the half second it is given."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from experiments.probing.probes import Sample, cut_time
from protocols.dnsquery import answer_id

ANSWERED = 30  # queries answered before the censor drops the rest


def responder(sock: socket.socket, answered: list[float]) -> None:
    """Answer A queries with 192.0.2.7 until ANSWERED were answered, then drop every one."""
    while True:
        try:
            data, peer = sock.recvfrom(4096)
        except OSError:
            return
        if len(answered) >= ANSWERED:
            continue
        flags_counts = struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
        record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("192.0.2.7")
        sock.sendto(struct.pack("!H", answer_id(data)) + flags_counts + data[12:] + record, peer)
        answered.append(time.time())


def test_a_dropped_query_does_not_hold_up_the_next():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    answered: list[float] = []
    threading.Thread(target=responder, args=(sock, answered), daemon=True).start()
    poll = subprocess.Popen([sys.executable, "-m", "experiments.probing.prober", "dns-poll",
                             "127.0.0.1", "site.example", "0.002", str(sock.getsockname()[1])],
                            stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while len(answered) < ANSWERED and time.time() < deadline:
        time.sleep(0.01)
    dropped_from = time.time()
    time.sleep(0.5)
    poll.send_signal(signal.SIGINT)
    queries = json.loads(poll.communicate(timeout=15)[0])
    sock.close()
    assert len(answered) == ANSWERED
    got = [q for q in queries if q[1] == ["192.0.2.7"]]
    assert len(got) == ANSWERED, "every answer is matched to its query"
    after = sum(sent > dropped_from for sent, _, _ in queries)
    assert after >= 20, f"{after} queries in the half second after the censor's drop"
    samples = [Sample(k, sent, 1000 * (at - sent) if got else None, at)
               for k, (sent, got, at) in enumerate(queries, 1)]
    assert cut_time(samples, answered[-1] - 0.01) is not None
