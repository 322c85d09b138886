"""Body limits that hold before the bytes arrive: a chunked upload (no Content-Length) far over
--max-body-mb is cut off at the limit, and a declared length over it is refused unread."""

import select
import socket
import time

from tests.apps.service.conftest import Server

LIMIT = 8 * 2**20  # the server fixture's --max-body-mb
CHUNK = 64 * 1024


def _chunked_upload(server: Server, total: int) -> tuple[int, bytes]:
    """Send a multipart body of ``total`` bytes with Transfer-Encoding: chunked, as fast as the
    server takes it; stop when it answers or closes. Returns (bytes sent, answer)."""
    host, port = server.url.removeprefix("http://").split(":")
    boundary = "deepraftboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(
        (
            f"POST /v1/scan HTTP/1.1\r\nHost: {host}:{port}\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        ).encode()
    )
    sent, answer = 0, b""
    payload = head + b"\xff" * (CHUNK - len(head))
    deadline = time.time() + 60
    try:
        while sent < total and time.time() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break
            if writable:
                data = payload if sent == 0 else b"\xff" * CHUNK
                sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                sent += len(data)
        if sent >= total:
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(30)
        while chunk := sock.recv(65536):
            answer += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return sent, answer


def test_chunked_upload_stops_at_the_limit(server):
    rss_before = server.status("VmRSS")
    sent, answer = _chunked_upload(server, 64 * 2**20)
    rss_after = server.status("VmRSS")
    print(
        f"\nchunked 64 MiB upload under an 8 MiB limit: {sent / 2**20:.1f} MiB sent before the server answered; "
        f"server RSS {rss_before:.0f} -> {rss_after:.0f} MB, peak {server.peak_rss_mb():.0f} MB"
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"status":413' in answer and b"larger than" in answer
    assert b"connection: close" in answer.lower()
    # the server stopped reading at the limit (+ one chunk); what the client got out beyond that
    # sat in the two sockets' kernel buffers (a few MiB on loopback), never in the server
    assert sent < LIMIT + 16 * 2**20, f"{sent / 2**20:.1f} MiB sent"
    assert rss_after - rss_before < 64, f"server RSS grew {rss_after - rss_before:.0f} MB"


def test_declared_length_over_the_limit_is_refused_unread(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            (
                f"POST /v1/protect HTTP/1.1\r\nHost: {host}\r\nContent-Length: {64 * 2**20}\r\n"
                f"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
            ).encode()
        )
        answer = b""
        while chunk := sock.recv(65536):  # the answer comes without a byte of the body sent
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"status":413' in answer and b"connection: close" in answer.lower()
