"""A process killed mid-write leaves no half-written unit.

`switchyard-bench write-load` writes units (a row and its event row, one transaction each) from 64
concurrent writers through Switchyard's storage layer. We kill it with SIGKILL while it writes,
then check that every row that survived has its event and every event its row, and that the
database opens and accepts writes again.
"""

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import SWITCHYARD_BIN

BENCH_BIN = SWITCHYARD_BIN.parent / "switchyard-bench"


def kill_mid_write(database_url, at_least=3000, timeout=60):
    process = subprocess.Popen([str(BENCH_BIN), "write-load", database_url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    committed = 0
    try:
        for line in process.stdout:
            if line.startswith("committed "):
                committed = int(line.split()[1])
                if committed >= at_least:
                    break
            if time.monotonic() > deadline:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert committed >= at_least, f"the writer committed only {committed} units: {process.stderr.read()[-2000:]}"
    return committed


def check_units(rows, events, orphans, committed):
    assert rows >= committed, "every unit reported as committed survived the kill"
    assert rows == events, f"{rows} rows but {events} events: a unit was half-written"
    assert orphans == 0


def test_sqlite_process_killed_mid_write(tmp_path):
    path = tmp_path / "crash.sqlite"
    committed = kill_mid_write(f"sqlite://{path}")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT COUNT(*) FROM bench_items").fetchone()[0]
        events = db.execute("SELECT COUNT(*) FROM bench_events").fetchone()[0]
        orphans = db.execute("SELECT COUNT(*) FROM bench_items i LEFT JOIN bench_events e ON e.item_id = i.id "
                             "WHERE e.id IS NULL").fetchone()[0]
    check_units(rows, events, orphans, committed)
    # It starts again on the same file and goes on writing.
    again = kill_mid_write(f"sqlite://{path}", at_least=1000)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM bench_items").fetchone()[0] >= rows + again


def test_postgres_process_killed_mid_write(pg_database_url):
    committed = kill_mid_write(pg_database_url)

    def scalar(sql):
        out = subprocess.run(["psql", "-X", "-A", "-t", "-d", pg_database_url, "-c", sql], check=True,
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL).stdout
        return int(out.strip())

    check_units(scalar("SELECT COUNT(*) FROM bench_items"), scalar("SELECT COUNT(*) FROM bench_events"),
                scalar("SELECT COUNT(*) FROM bench_items i LEFT JOIN bench_events e ON e.item_id = i.id WHERE e.id IS NULL"),
                committed)
