"""A throwaway PostgreSQL 15 cluster for the benchmark baselines: install, start, stop.

The cluster lives in a temporary folder (data and Unix socket both there), listens on no TCP
address, trusts local connections and is tuned for a 2-core / 24 GiB machine (see SETTINGS).
It is safe to drive as root: initdb and pg_ctl then run as the ``postgres`` system user
(``runuser``), and the folder is handed to that user.

    python benchmarks/postgres.py start [--dir DIR] [--port N]   # prints the DSN; installs
                                                                   # Debian's postgresql if needed
    python benchmarks/postgres.py stop DIR

    from postgres import Cluster
    with Cluster.start() as pg:          # a new cluster in a temp dir, removed on exit
        psycopg.connect(pg.dsn)
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
DBNAME = "bench"

# Tuned for the benchmark machine: 2 cores, 24 GiB RAM, a disposable cluster (no durability).
SETTINGS = {
    "listen_addresses": "''",
    "max_connections": "20",
    "shared_buffers": "2GB",
    "work_mem": "256MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "12GB",
    "max_worker_processes": "4",
    "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "2",
    "max_parallel_maintenance_workers": "2",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "timezone": "'UTC'",
    # JIT compiles each big query for 1-2.5 s at 1M contacts and saved less: the 20 segments
    # ran 17% faster without it (2 cores, 1M contacts, warm cache)
    "jit": "off",
    # a throwaway cluster: fast loading, nothing to recover
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "off",  # the loader runs VACUUM ANALYZE itself
    "logging_collector": "off",
}


def available() -> bool:
    """True when Debian's PostgreSQL 15 server binaries are installed."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def ensure_installed() -> None:
    """Install Debian's ``postgresql`` package when the server binaries are missing (root)."""
    if available():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(
            f"PostgreSQL {PG_VERSION} is not installed ({PG_BIN}/initdb is missing) and this "
            "process cannot install it: run `apt-get install -y postgresql` as root."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    if not available():
        raise RuntimeError(f"apt-get installed postgresql but {PG_BIN}/initdb is still missing")


def _as_owner(cmd: list[str]) -> list[str]:
    """Run as the postgres user when we are root (initdb and postgres refuse to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running cluster: its folder, port, and a DSN for psycopg (Unix socket in the folder)."""

    dir: Path
    port: int
    owns_dir: bool = False

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def user(self) -> str:
        return "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    @property
    def dsn(self) -> str:
        return f"host={self.dir} port={self.port} user={self.user} dbname={DBNAME}"

    @classmethod
    def start(cls, dir: str | Path | None = None, port: int | None = None,
              settings: dict[str, str] | None = None) -> Cluster:
        """initdb a new cluster in ``dir`` (a new temp folder by default), start it, create
        the database ``bench``."""
        ensure_installed()
        owns = dir is None
        base = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix="segmentum-pg-"))
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
            reach = subprocess.run(_as_owner(["test", "-x", str(base)]), check=False)
            if reach.returncode != 0:
                raise RuntimeError(
                    f"The postgres user cannot reach {base} (a parent folder is private): "
                    "give no folder (a new one under /tmp is used) or one it can enter."
                )
        base.chmod(0o700)
        c = cls(base, port or free_port(), owns)
        user = c.user
        subprocess.run(
            _as_owner([str(PG_BIN / "initdb"), "-D", str(c.data), "-U", user, "--auth=trust",
                       "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        conf = {**SETTINGS, "port": str(c.port), "unix_socket_directories": f"'{base}'",
                **(settings or {})}
        with open(c.data / "postgresql.conf", "a") as f:
            f.write("\n# segmentum benchmark\n")
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        subprocess.run(
            _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(c.data), "-l", str(base / "server.log"),
                       "-w", "-t", "120", "start"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            _as_owner([str(PG_BIN / "createdb"), "-h", str(base), "-p", str(c.port), "-U", user,
                       DBNAME]),
            check=True,
        )
        return c

    def stop(self, remove: bool | None = None) -> None:
        """Stop the server (fast shutdown); remove the folder when we created it."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                           "stop"]),
                check=False, stdout=subprocess.DEVNULL,
            )
        if self.owns_dir if remove is None else remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """The postmaster and its children (for memory sampling)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [pid, *_children(pid)]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")"
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(stat.parent.name))
    return kids


def server_pss_mib(dsn_dir: str | Path) -> float:
    """Proportional set size (MiB) of a cluster's processes, summed: shared buffers counted
    once. ``dsn_dir`` is the cluster folder (the DSN's host)."""
    c = Cluster(Path(dsn_dir), 0)
    total = 0
    for pid in c.server_pids():
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="initdb + start a cluster; print its DSN")
    s.add_argument("--dir", type=Path, default=None)
    s.add_argument("--port", type=int, default=None)
    t = sub.add_parser("stop", help="stop the cluster in DIR and remove DIR")
    t.add_argument("dir", type=Path)
    t.add_argument("--keep", action="store_true", help="keep the folder")
    args = ap.parse_args()
    if args.cmd == "start":
        c = Cluster.start(args.dir, args.port)
        print(c.dsn)
    else:
        Cluster(args.dir, 0).stop(remove=not args.keep)


if __name__ == "__main__":
    sys.exit(main())
