"""Start and stop Azurite (the Azure Storage emulator) from the repo's node_modules."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
# The well-known Azurite development account; the only key that may appear in the repo.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    pass


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def find_azurite() -> str:
    local = REPO / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise AzuriteError(f"Azurite is not installed: run `npm ci` in {REPO} (`make demo` and `make test` do)")


def connection_string(host: str, blob: int, queue: int, table: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{ACCOUNT};"
    )


class Azurite:
    """One Azurite process on free loopback ports; data in `location` or in memory."""

    def __init__(self, location: Path | None = None, host: str = "127.0.0.1") -> None:
        self.location = location
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: list[int] = []

    @property
    def connection_string(self) -> str:
        blob, queue, table = self.ports
        return connection_string(self.host, blob, queue, table)

    def start(self, timeout: float = 30.0) -> Azurite:
        binary = find_azurite()
        self.ports = free_ports(3, self.host)
        blob, queue, table = self.ports
        args = [
            binary, "--silent", "--skipApiVersionCheck", "--disableTelemetry",
            "--blobHost", self.host, "--blobPort", str(blob),
            "--queueHost", self.host, "--queuePort", str(queue),
            "--tableHost", self.host, "--tablePort", str(table),
        ]  # fmt: skip
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        log_dir = self.location or Path(REPO / ".p2c")
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = (log_dir / "azurite.log").open("wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        pending = set(self.ports)
        while pending:
            if self.process.poll() is not None:
                raise AzuriteError(f"Azurite exited with code {self.process.returncode}; see {self._log.name}")
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not listen on {sorted(pending)} within {timeout:.0f}s")
            for port in list(pending):
                with socket.socket() as s:
                    s.settimeout(0.2)
                    if s.connect_ex((self.host, port)) == 0:
                        pending.discard(port)
            if pending:
                time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Stop our own process, by its PID."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
