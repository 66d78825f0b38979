"""A relay for evading censors: an HTTP CONNECT proxy, in the clear and inside TLS.

Port 8080 speaks plain HTTP CONNECT: the destination name travels in the clear, so a keyword
censor still sees it, but address blocks and lying resolvers are evaded (the relay resolves
names through its own resolver). Port 8443 is the same proxy inside TLS (curl
``--proxy https://...``), a tunnel in which a border sees nothing but the relay's address.

    python -m protocols.relay RESOLVER_ADDRESS CERT KEY
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import sys
import threading

from .dnsquery import resolve

PLAIN_PORT, TLS_PORT = 8080, 8443


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _handle(client: socket.socket, resolver: str, context: ssl.SSLContext | None) -> None:
    try:
        if context:  # the TLS handshake happens here, not in the accept loop
            client = context.wrap_socket(client, server_side=True)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 8192:
            chunk = client.recv(4096)
            if not chunk:
                return
            request += chunk
        method, target, *_ = request.split(b"\r\n", 1)[0].decode(errors="replace").split()
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or not port.isdigit():
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            address = str(ipaddress.IPv4Address(host))
        except ValueError:
            found = resolve(host, resolver)
            address = found[0] if found else ""
        try:
            upstream = socket.create_connection((address, int(port)), timeout=5)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        upstream.settimeout(None)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)
    except (OSError, ValueError, ssl.SSLError):
        pass
    finally:
        client.close()


def _listen(port: int, resolver: str, context: ssl.SSLContext | None) -> None:
    server = socket.create_server(("0.0.0.0", port), reuse_port=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_handle, args=(client, resolver, context), daemon=True).start()


def main() -> None:
    resolver, cert, key = sys.argv[1:4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    threading.Thread(target=_listen, args=(TLS_PORT, resolver, context), daemon=True).start()
    _listen(PLAIN_PORT, resolver, None)


if __name__ == "__main__":
    main()
