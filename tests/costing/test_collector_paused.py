"""The year's computation pauses Python's cyclic garbage collector while it allocates (the
collections freed nothing and took a third of its time), and always resumes it after."""

import gc

import pytest

from costing import services


def test_the_collector_is_paused_inside_and_resumed_after_even_on_an_error():
    assert gc.isenabled()
    with services.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), services.collector_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


def test_a_collector_paused_by_the_caller_stays_paused():
    gc.disable()
    try:
        with services.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.django_db
def test_computing_a_year_leaves_the_collector_running():
    services.compute_reimbursements(2026)
    assert gc.isenabled()


def test_what_the_pause_allocated_goes_straight_to_the_oldest_generation():
    # Examined by the young generations' collections, the year's hundreds of thousands of
    # results would be walked twice for nothing (they live as long as the caller keeps them).
    with services.collector_paused():
        kept = [[index] for index in range(1000)]
    assert any(found is kept for found in gc.get_objects(generation=2))
    assert not any(found is kept for found in gc.get_objects(generation=0))
    assert gc.isenabled()


def test_objects_frozen_by_the_server_stay_frozen():
    # gunicorn's workers freeze what they loaded (gunicorn.conf.py): never thawed here.
    loaded = [["loaded by the worker"]]
    gc.freeze()
    try:
        with services.collector_paused():
            kept = [[index] for index in range(1000)]
        assert gc.get_freeze_count() > 0
        # Thawed, it would be back in the oldest generation; frozen, in none.
        assert not any(found is loaded for found in gc.get_objects(generation=2))
        assert not any(found is kept for found in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
