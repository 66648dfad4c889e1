"""A real PostgreSQL server on 127.0.0.1 for the tests, in a temporary data folder.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as
the 'postgres' system user (Debian's package creates it). Skipped, with the reason, when
the server binaries are not installed (Debian: apt-get install -y postgresql).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest

PASSWORD = "s3cret-Pa55word-7"   # tests assert this string never appears in output or files


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runuser() -> str | None:
    found = shutil.which("runuser")
    if found:
        return found
    return next((p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None)


@pytest.fixture(scope="session")
def postgres_url():
    # no client, no point starting a server
    pytest.importorskip("psycopg", reason="psycopg (the 'distributed' extra) talks to PostgreSQL")
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server not installed (Debian: apt-get install -y postgresql)")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        runuser = _runuser()
        if runuser is None:
            pytest.skip("running as root and there is no runuser to start the server as 'postgres'")
        as_user = [runuser, "-u", "postgres", "--"]
    root = tempfile.mkdtemp(prefix="dropout-bench-pg-")
    data, pwfile = os.path.join(root, "data"), os.path.join(root, "pw")
    with open(pwfile, "w") as fh:
        fh.write(PASSWORD)
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    subprocess.run([*as_user, initdb, "-D", data, "-U", "postgres", "-A", "scram-sha-256",
                    f"--pwfile={pwfile}"], check=True, capture_output=True, timeout=180)
    try:
        # -w: pg_ctl returns once the server accepts connections (or fails after -t seconds)
        subprocess.run([*as_user, pg_ctl, "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "120", "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start"],
                       check=True, capture_output=True, timeout=180)
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        try:
            subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "60", "stop"],
                           capture_output=True, timeout=120)
        finally:
            shutil.rmtree(root, ignore_errors=True)
