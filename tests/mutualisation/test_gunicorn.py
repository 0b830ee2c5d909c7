"""The production server's settings (gunicorn.conf.py) as gunicorn reads them."""

import gc
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_freezes_what_it_loaded_so_page_views_do_not_rescan_it():
    """Once a worker has loaded Django, everything loaded so far (modules, settings, the app
    registry) lives as long as the worker: moved out of the collector's generations, the full
    collections that a page's many short-lived objects trigger no longer walk it (p95 of the
    dashboard at national scale: about 250 → 170 ms, docs/performance.md)."""
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    gc.unfreeze()
    try:
        config["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()
    finally:
        gc.unfreeze()
