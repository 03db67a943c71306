"""The metrics' per-process files on a disk with no room (node/observability/value_files.py): every block is
allocated before it is mapped, so a full disk is an error to handle, not a SIGBUS; a worker's file detaches and
catches up once there is room; the master's fold keeps an exited worker's files. The whole path against a real
full disk: tests/e2e/test_disk_full.py."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from node.observability import multiprocess, value_files
from node.observability.multiprocess import ENV, child_exit, fold
from node.observability.value_files import INITIAL_BYTES, ValueFile


class Disk:
    """``value_files.allocate`` with a switch: ``full`` makes it refuse as a full disk does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        real = value_files.allocate

        def allocate(fd: int, size: int) -> None:
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(fd, size)

        monkeypatch.setattr(value_files, "allocate", allocate)
        monkeypatch.setattr(value_files, "RETRY_SECONDS", 0.0)  # every change tries again at once


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


def stored(path: Path) -> dict[str, float]:
    return {key: value for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path))}


def test_every_block_of_a_new_file_is_allocated(tmp_path: Path) -> None:
    path = tmp_path / "counter_1.db"
    values = ValueFile(str(path))
    values.write_value("a", 1.0, 0.0)
    values.close()
    assert path.stat().st_size == INITIAL_BYTES
    assert path.stat().st_blocks * 512 >= INITIAL_BYTES  # not a sparse file: no page of it can fault
    assert stored(path) == {"a": 1.0}


def test_a_grown_file_is_allocated_before_it_is_mapped(tmp_path: Path) -> None:
    path = tmp_path / "counter_1.db"
    values = ValueFile(str(path))
    keys = [f"key-{n:05d}-" + "x" * 200 for n in range(400)]  # ~94 KB: the file doubles once
    for n, key in enumerate(keys):
        values.write_value(key, float(n), 0.0)
    values.close()
    assert path.stat().st_size == 2 * INITIAL_BYTES and path.stat().st_blocks * 512 >= 2 * INITIAL_BYTES
    assert stored(path) == {key: float(n) for n, key in enumerate(keys)}


def test_a_file_made_on_a_full_disk_detaches_then_catches_up(tmp_path: Path, disk: Disk) -> None:
    path = tmp_path / "counter_1.db"
    disk.full = True
    values = ValueFile(str(path))  # no error: counting must never fail a request
    values.write_value("requests", 3.0, 0.0)
    assert values.read_value("requests") == (0.0, 0.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half made for a scrape to trip on
    disk.full = False
    values.write_value("requests", 4.0, 0.0)  # the next change, once there is room
    values.close()
    assert stored(path) == {"requests": 4.0}


def test_a_file_that_cannot_grow_keeps_its_values_and_takes_new_keys_later(tmp_path: Path, disk: Disk) -> None:
    path = tmp_path / "counter_1.db"
    values = ValueFile(str(path))
    values.write_value("first", 1.0, 0.0)
    filler = [f"key-{n:05d}-" + "x" * 200 for n in range(270)]  # just under the first 64 KB
    for key in filler:
        values.write_value(key, 1.0, 0.0)
    disk.full = True
    for n in range(20):
        values.write_value(f"new-{n}-" + "y" * 200, 1.0, 0.0)  # needs a larger file: not written, no error
    values.write_value("first", 2.0, 0.0)  # a key it holds is still written
    assert path.stat().st_size == INITIAL_BYTES
    assert stored(path)["first"] == 2.0
    disk.full = False
    values.write_value("new-0-" + "y" * 200, 5.0, 0.0)
    values.close()
    assert stored(path)["new-0-" + "y" * 200] == 5.0


def test_strict_files_raise(tmp_path: Path, disk: Disk) -> None:
    disk.full = True
    with pytest.raises(OSError) as raised:
        ValueFile(str(tmp_path / "counter_archive.db.new"), strict=True)
    assert raised.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


#: a worker in short: the node's value files installed as ``ccm-node serve`` does, then some requests counted
WORKER = """
import sys
from node.observability.value_files import install
install()
from node.observability.instruments import count_request
for n in range(int(sys.argv[1])):
    count_request("/healthz", "GET", 200, 0.004 * n)
"""


def exposition(path: Path) -> dict[str, float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return {f"{s.name}{sorted(s.labels.items())}": s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode()) for s in family.samples}


def run_workers(path: Path, *counts: int) -> set[int]:
    root = Path(__file__).resolve().parents[2]
    for n in counts:
        subprocess.run([sys.executable, "-c", WORKER, str(n)], env={**os.environ, ENV: str(path)}, cwd=root,
                       check=True, timeout=60)
    return {int(f.stem.split("_")[1]) for f in path.glob("counter_*.db")}


def test_workers_count_through_the_value_files(tmp_path: Path) -> None:
    assert len(run_workers(tmp_path, 2, 3)) == 2
    for made in tmp_path.glob("*.db"):  # made by ValueFile, not by prometheus-client's sparse truncate
        assert made.stat().st_blocks * 512 >= made.stat().st_size > 0
    key = "ccm_http_requests_total[('method', 'GET'), ('route', '/healthz'), ('status', '200')]"
    assert exposition(tmp_path)[key] == 5


def test_a_fold_on_a_full_disk_keeps_the_workers_files_and_the_sums(tmp_path: Path, disk: Disk,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    pids = sorted(run_workers(tmp_path, 2, 3))
    fold(tmp_path, pids[0])
    before, files = exposition(tmp_path), sorted(p.name for p in tmp_path.iterdir())
    disk.full = True
    with pytest.raises(OSError):
        fold(tmp_path, pids[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == files and exposition(tmp_path) == before

    class Worker:
        pid = pids[1]

    with pytest.MonkeyPatch.context() as env:
        env.setenv(ENV, str(tmp_path))
        child_exit(None, Worker())  # gunicorn's hook in the master: logs, never raises
    assert "kept unfolded (No space left on device)" in caplog.text
    assert exposition(tmp_path) == before
    disk.full = False
    fold(tmp_path, pids[1])  # room again: the next fold takes them
    assert exposition(tmp_path) == before
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    assert multiprocess.LOCK in {p.name for p in tmp_path.iterdir()}
