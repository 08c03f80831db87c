"""Clients that send a byte at a time cannot hold the service's connections: `nld serve` (a
real process) answers 408 and closes a request whose headers, or whose body, take longer
than NLD_REQUEST_READ_TIMEOUT_SECONDS, so that under --limit-concurrency everyone else gets
served again."""

import socket
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.service.servers import free_port, running_server


def _trickle(
    port: int, head: bytes, body: bytes, out: dict, key: str, connected: threading.Event
) -> None:
    """Send `head` at once, then `body` one byte every 0.1 s for at most 8 s; keep what the
    server answered."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        deadline = time.monotonic() + 8
        try:
            s.sendall(head)
            connected.set()
            for byte in body:
                if time.monotonic() > deadline:
                    break
                s.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass  # closed by the server
        try:
            while chunk := s.recv(4096):
                got += chunk
        except OSError:
            pass
    out[key] = got


def test_slow_clients_get_408_and_free_their_slots(models_dir):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("nld")),
        "serve",
        "--models",
        str(models_dir),
        "--port",
        str(port),
        "--limit-concurrency",
        "4",
    ]
    env = {"NLD_REQUEST_READ_TIMEOUT_SECONDS": "2"}
    with running_server(command, env, url):
        body = b'{"observations": [[1, 2, 3, 4]]}' + b" " * 200
        post = (
            b"POST /segment/stream HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
        )
        answers: dict[str, bytes] = {}
        slow = {"body1": (post, body), "body2": (post, body), "head": (b"", post)}  # head: the
        connected = {key: threading.Event() for key in slow}  # headers a byte at a time
        threads = [
            threading.Thread(target=_trickle, args=(port, *sent, answers, key, connected[key]))
            for key, sent in slow.items()
        ]
        for t in threads:
            t.start()
        for event in connected.values():
            assert event.wait(10)
        # The three and the next connection reach the limit of 4 now.
        locked = httpx.get(f"{url}/healthz", timeout=5).status_code
        start = time.monotonic()
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() - start < 5, "slow clients kept the service locked"
            time.sleep(0.1)
        assert locked == 503  # uvicorn counts the slow connections against the limit
        for t in threads:
            t.join(timeout=20)
        for key in ("body1", "body2", "head"):
            assert answers[key].startswith(b"HTTP/1.1 408"), (key, answers[key][:200])
        assert b"body did not arrive within 2 s" in answers["body1"]
        assert b"headers did not arrive within 2 s" in answers["head"]
        # A client at an ordinary pace is served as before.
        ok = httpx.post(f"{url}/segment/stream", json={"observations": [[1, 2, 3, 4]]})
        assert ok.status_code == 200
