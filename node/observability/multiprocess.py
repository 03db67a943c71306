"""prometheus-client's multiprocess mode under gunicorn: every worker writes its counters to files in one
directory, and a scrape (answered by any worker) sums the files of all of them.

The node chooses the directory itself, ``<data_dir>/metrics/`` (mode 0700), and empties it when the gunicorn
master starts, before the app is loaded (``ccm-node serve``, ``deploy/gunicorn.conf.py``): counters start at
zero with the server, as Prometheus expects after a restart.

A worker's files stay after it exits (its counts are part of the totals), and gunicorn replaces workers often
(``max_requests``, the idle recycling of :mod:`node.serve_worker`); a scrape reads every file, about 1.5 ms per
worker that ever ran. So :func:`child_exit` folds an exited worker's counters and histograms into one archive
file per kind (``counter_archive.db``, ``histogram_archive.db``) and deletes its own. Scrapes hold a shared lock
on ``<dir>/.lock`` and the fold an exclusive one, so a scrape never reads a file half-folded or just deleted.

The files live on the data directory's disk: every file is written through :class:`.value_files.ValueFile`, whose
blocks are allocated before they are mapped, so a full disk never kills a worker or the master (SIGBUS); a worker
keeps counting in memory until there is room, and a fold that finds no room leaves the worker's files as they are.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
DIRECTORY = "metrics"
LOCK = ".lock"
#: the kinds of file whose values add up across processes (the node makes no multiprocess gauges)
SUMMED = ("counter", "histogram")
log = logging.getLogger(__name__)


def metrics_dir(data_dir: Path) -> Path:
    return data_dir / DIRECTORY


def prepare(data_dir: Path) -> Path:
    """Point prometheus-client's multiprocess mode at ``<data_dir>/metrics/``, emptied; call it in the gunicorn
    master before the app is loaded. Calling it again in the same process (gunicorn re-reads its config file on
    SIGHUP) keeps the files of the running workers.

    Returns:
        The directory.
    """
    path = metrics_dir(data_dir).resolve()
    if os.environ.get(ENV) == str(path) and path.is_dir():
        return path
    if path.is_dir():
        shutil.rmtree(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    from .value_files import install

    install()  # metrics made from now on use the files, each block allocated before it is mapped
    return path


def enabled() -> bool:
    """True when this process's metrics go to the multiprocess directory."""
    path = os.environ.get(ENV)
    return path is not None and path != "" and Path(path).is_dir()


def when_ready(_server: Any) -> None:
    """gunicorn's ``when_ready`` hook, in the master after the app is preloaded and before the workers fork:
    forget what the master itself counted (the web interface's warm-up requests, :mod:`node.web.warm`), so that
    only requests the workers answered are in the sums."""
    path = os.environ.get(ENV)
    if path and Path(path).is_dir():
        for file in Path(path).glob(f"*_{os.getpid()}.db"):
            file.unlink(missing_ok=True)


@contextmanager
def locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """The directory's lock: shared for a scrape, exclusive for folding a worker's files into the archive."""
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def fold(path: Path, pid: int) -> None:
    """Add an exited process's counters and histograms to the archive files and delete its own files; the sums
    a scrape reports do not change.

    Raises:
        OSError: the disk has no room for the new archive (``ENOSPC``): the archive and the process's files are
            left as they were, and a scrape goes on summing them.
    """
    from prometheus_client.mmap_dict import mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    from .value_files import ValueFile

    with locked(path, exclusive=True):
        for kind in SUMMED:
            dead, archive = path / f"{kind}_{pid}.db", path / f"{kind}_archive.db"
            if not dead.exists():
                continue
            sources = [str(f) for f in (archive, dead) if f.exists()]
            merged = MultiProcessCollector.merge(sources, accumulate=False)  # type: ignore[no-untyped-call]
            fresh = path / f"{kind}_archive.db.new"  # not *.db: a scrape does not read it
            fresh.unlink(missing_ok=True)
            try:
                out = ValueFile(str(fresh), strict=True)  # a full disk raises here, never SIGBUS in the master
                try:
                    for metric in merged:
                        for sample in metric.samples:
                            key = mmap_key(metric.name, sample.name, list(sample.labels),
                                           list(sample.labels.values()), metric.documentation)
                            out.write_value(key, sample.value, 0.0)
                finally:
                    out.close()  # type: ignore[no-untyped-call]
            except OSError:
                fresh.unlink(missing_ok=True)
                raise
            os.replace(fresh, archive)
            dead.unlink()


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: a worker is gone; drop its live gauges and fold its counts into the
    archive."""
    if enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
        try:
            fold(Path(os.environ[ENV]), worker.pid)
        except OSError as exc:  # a full disk: the worker's files stay, and a scrape goes on summing them
            log.warning("metrics: the files of an exited worker are kept unfolded (%s)",
                        exc.strerror or type(exc).__name__)
