"""A small real web server for the sites of one node: HTTP on port 80, HTTPS on 443.

Answers only for the site names it hosts (404 otherwise), so a probe can tell the real site
from a wrong server, and serves a page of about 2 kB naming the site and the node. The HTTPS
listener exists so that censors can be tested on TLS server names (SNI) as well as on Host
headers; its certificate is self-signed, clients use ``curl -k``.

    python -m protocols.webserver NODE SITE[,SITE...] CERT KEY
"""

from __future__ import annotations

import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FILLER = "splinterlab test page. " * 80


class SiteHandler(BaseHTTPRequestHandler):
    server_version = "splinterlab-web/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if host in self.server.sites:
            body = f"<h1>{host}</h1><p>served by {self.server.node}</p><p>{FILLER}</p>\n"
            self._send(200, body.encode())
        else:
            self._send(404, f"no site {host!r} here\n".encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # probes measure; the server stays quiet
        pass


def serve(node: str, sites: list[str], cert: str, key: str) -> None:
    servers = []
    for port, tls in ((80, False), (443, True)):
        server = ThreadingHTTPServer(("0.0.0.0", port), SiteHandler)
        server.daemon_threads = True
        server.node, server.sites = node, set(sites)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    threads[0].join()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4])
