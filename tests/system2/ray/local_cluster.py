"""A real two-node Ray cluster on this machine, for the slow tests: ``ray start --head`` and
a second ``ray start --address``, each with one CPU, a small object store and ports of its
own, under a temp dir of their own.

Stopping it ends exactly the processes it started: those whose command line names its temp
dir or joins its head's address (the head's Ray client server), and their descendants
(never ``ray stop``, which ends every Ray on the machine).

The cluster authenticates as the test process's Ray will: with a token
(``~/.ray/auth_token``) once an earlier local ``ray.init`` in this process turned token
mode on (``RAY_AUTH_MODE=token`` in its environment), else without (Ray reads the mode
when first imported, and a driver joining by address does not turn it on).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalCluster"]

_OBJECT_STORE_BYTES = 128 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _node_ports() -> list[str]:
    """Ports that two nodes on one machine must not share."""
    return [
        f"--node-manager-port={_free_port()}",
        f"--object-manager-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
    ]


@dataclass
class LocalCluster:
    """A started cluster; ``address`` is what ``ray.init``/``--address`` take."""

    address: str
    temp_dir: Path

    @classmethod
    def start(cls, *, nodes: int = 2, cpus_per_node: int = 1) -> LocalCluster:
        # A short path: Ray's unix socket paths must stay under ~107 characters.
        temp_dir = Path(tempfile.mkdtemp(prefix="s2ray-", dir="/tmp"))
        port = _free_port()
        auth = os.environ.get("RAY_AUTH_MODE", "disabled")
        env = {**os.environ, "RAY_AUTH_MODE": auth, "RAY_USAGE_STATS_ENABLED": "0"}
        common = [
            f"--num-cpus={cpus_per_node}",
            f"--object-store-memory={_OBJECT_STORE_BYTES}",
            f"--temp-dir={temp_dir}",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
        ]
        cluster = cls(address=f"127.0.0.1:{port}", temp_dir=temp_dir)
        head = [
            "ray",
            "start",
            "--head",
            f"--port={port}",
            f"--ray-client-server-port={_free_port()}",
            "--include-dashboard=false",
        ]
        try:
            _run([*head, *common, *_node_ports()], env)
            for _ in range(nodes - 1):
                _run(["ray", "start", f"--address={cluster.address}", *common, *_node_ports()], env)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self, grace_s: float = 5.0) -> None:
        """End this cluster's processes: SIGTERM, then SIGKILL what is left."""
        pids = self._processes()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        for pid in pids:
            _signal(pid, signal.SIGKILL)

    def _processes(self) -> list[int]:
        """The pids whose command line names the temp dir or joins the head's port, and
        all their descendants."""
        parents: dict[int, int] = {}
        roots: list[int] = []
        marker = str(self.temp_dir).encode()
        head_port = ":" + self.address.rsplit(":", 1)[1]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
            arguments = cmdline.decode(errors="replace").split("\0")
            joins = any(a.startswith("--address=") and a.endswith(head_port) for a in arguments)
            if marker in cmdline or joins:
                roots.append(pid)
        found = set(roots)
        grew = True
        while grew:
            children = {p for p, parent in parents.items() if parent in found} - found
            grew = bool(children)
            found |= children
        found.discard(os.getpid())
        return sorted(found)


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stdout}\n{done.stderr}")


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
