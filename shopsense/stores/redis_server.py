"""A real, throwaway redis-server on a free loopback port, for the tests and the benchmarks.

    server = RedisServer(Path("/tmp/redis-dir")); server.start()
    client = redis.Redis.from_url(server.url)
    server.restart()  # SHUTDOWN, then start again on the same port and --dir (AOF reload)
    server.stop()

The server persists with an append-only file fsynced on every write and no RDB snapshots,
the set-up that makes an acknowledged write survive a restart. It needs the `redis-server`
binary (Debian package redis-server; `make setup` installs it).
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)]
        log = open(self.directory / "redis.log", "ab")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child holds its own descriptor
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                # Until the AOF is loaded the server answers LOADING errors, so wait for it.
                if client.info("persistence")["loading"] == 0:
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")
            time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """SHUTDOWN (fsyncs the AOF and exits), falling back to killing the process."""
        if self._process is None:
            return
        if self._process.poll() is None:
            try:
                redis.Redis(port=self.port).shutdown()
            except redis.ConnectionError:
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()
