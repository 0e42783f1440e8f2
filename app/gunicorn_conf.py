"""gunicorn settings. The app (rules automaton, model, jieba) is built once in the master
(preload_app) and shared copy-on-write by the forked workers."""
from __future__ import annotations

import gc
import os
import shutil
import tempfile

from app.config import Settings

_settings = Settings.from_env()

# metrics from every worker are summed through files in this directory
_prom_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                  os.path.join(tempfile.gettempdir(), f"smsguard-prom-{os.getpid()}"))
shutil.rmtree(_prom_dir, ignore_errors=True)
os.makedirs(_prom_dir, exist_ok=True)

bind = _settings.bind
workers = _settings.workers
# gthread keeps client connections alive (a sending platform reuses its connections; the sync
# worker closes each one after one request, which costs more than the check itself)
worker_class = os.environ.get("SMSGUARD_WORKER_CLASS", "gthread")


def default_threads(database_url: str) -> int:
    """Threads per worker when SMSGUARD_THREADS is not set. PostgreSQL: 2, so a worker overlaps
    one request's network round trips to the database with another's Python work. SQLite: 1,
    every write of every worker takes one lock (app/store/hotpath.py), and a second thread in the
    process takes the GIL whenever the lock holder waits on SQLite, so the holder (and every
    worker queued behind the lock) waits for that thread's slice of Python. Measured on the
    pre-send bench (docs/benchmarks.md): ~10% of the 2 cores idle instead of ~14%, p99.9 halved."""
    return 1 if database_url.startswith("sqlite") else 2


threads = int(os.environ.get("SMSGUARD_THREADS") or default_threads(_settings.database_url))
# the request line and headers parsed by gunicorn_h1c (C, picohttpparser; a dependency) instead
# of gunicorn's Python parser: ~0.1 ms less per request on the pre-send check (docs/benchmarks.md);
# "auto" falls back to the Python parser if the extension cannot be imported
http_parser = "auto"
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 0
accesslog = None  # the app writes one JSON line per request itself
errorlog = "-"
loglevel = _settings.log_level.lower()
# gunicorn's control socket defaults to one path in the home directory, shared by every instance
# on the machine (stopping one removed another's): each instance keeps its own in its folder
control_socket = str(_settings.instance_dir.resolve() / "gunicorn.ctl")


def when_ready(server):
    """In the master, after the app (rules automaton, model, jieba and pinyin tables: ~430,000
    Python objects) was loaded and before any worker is forked: move every object to the
    collector's permanent generation. A full collection then no longer walks them, which took
    ~80 ms and stopped a worker's requests that long every so often (the pre-send bench's p99.9),
    and the forked workers no longer copy their pages by touching the objects' GC headers."""
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    """After fork: fresh database connections, the SQLite checkpointer and a rule watcher thread
    in this worker."""
    from app.wsgi import app

    db = app.extensions["smsguard.db"]
    db.engine.dispose(close=False)
    db.start_checkpointer()
    moderator = app.extensions["smsguard.moderator"]
    if hasattr(moderator, "after_fork"):
        moderator.after_fork()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
