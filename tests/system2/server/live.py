"""A real server (uvicorn, in a thread of the test process) for tests that talk to it
over HTTP, e.g. with the official ``openai`` client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from system2.server.runner import DrainingServer

__all__ = ["LiveServer", "live_server"]


class LiveServer:
    def __init__(self, server: DrainingServer, port: int) -> None:
        self.server, self.port = server, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(app: FastAPI, *, startup_timeout_s: float = 120.0) -> Iterator[LiveServer]:
    """``app`` served on a free loopback port until the block ends (then shut down)."""
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False,
        timeout_graceful_shutdown=5,
    )  # fmt: skip
    server = DrainingServer(config, app.state.system2)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(server, port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
