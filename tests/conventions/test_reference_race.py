"""Two conventions that are the first of a year, created at once, get consecutive references
(before: the counter's get_or_create could raise IntegrityError for the second). The sequence
helper is the one the statements' numbers use."""

import threading

import pytest
from django.db import connection, transaction

from conventions.models import ReferenceCounter
from conventions.services import records
from mutualisation.services import next_in_sequence


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_first_references_of_a_year_at_once_are_consecutive():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race is proven on PostgreSQL (CI runs both).")
    workers = 6
    barrier = threading.Barrier(workers)
    references, errors = [], []

    def create():
        try:
            barrier.wait()
            with transaction.atomic():
                references.append(records.next_reference(2031))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(references) == [f"CONV-2031-{n:03d}" for n in range(1, workers + 1)]


@pytest.mark.django_db
def test_the_sequence_starts_at_one_and_never_skips():
    with transaction.atomic():
        assert [next_in_sequence(ReferenceCounter, year=2040) for _ in range(3)] == [1, 2, 3]
