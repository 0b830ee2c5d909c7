"""The admin's lists show a few columns of each row: they read neither the stored PDFs nor the
snapshots, computation traces, batch plans or import previews they do not show (100 rows a
page, each of those up to tens of kilobytes)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from costing import statements
from costing.models import BatchJob
from tests.costing.conftest import issue_after_review

pytestmark = pytest.mark.django_db

UNSHOWN = {
    "statement": ("pdf", "snapshot"),
    "unitcost": ("trace",),
    "batchjob": ("plan", "chunks_done"),
    "usageimport": ("errors", "preview"),
}


@pytest.mark.parametrize("model", sorted(UNSHOWN))
def test_an_admin_list_reads_no_column_it_does_not_show(client, personas, billed, model):
    drafts = statements.statements_prepare(2026)
    issue_after_review(drafts[0])
    BatchJob.objects.create(year=2026, action=BatchJob.Action.EXPORT, created_by=personas.finance)
    client.force_login(personas.admin)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(f"admin:costing_{model}_changelist"))
    assert response.status_code == 200
    table = f'"costing_{model}"'
    read = [q["sql"] for q in captured.captured_queries if f"FROM {table}" in q["sql"]]
    assert read
    columns = "|".join(UNSHOWN[model])
    assert not [sql for sql in read if re.search(rf'{table}\."({columns})"', sql)]
