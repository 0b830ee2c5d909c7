"""Who downloaded or exported what is logged, visible to administrators only, and purged after
the retention period (CNIL: 6 to 12 months)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from mutualisation.models import DocumentAccess
from tests.conventions.conftest import mad_descendante  # noqa: F401 (shared fixture)

pytestmark = pytest.mark.django_db


def test_a_convention_pdf_download_is_logged_with_its_reader(client, personas, mad_descendante):  # noqa: F811
    client.force_login(personas.reader_a)
    reference = mad_descendante.convention.reference
    assert client.get(reverse("conventions:pdf", args=[reference])).status_code == 200
    access = DocumentAccess.objects.get()
    assert access.username == personas.reader_a.username
    assert access.document == f"{reference}.pdf"
    assert access.path == f"/conventions/{reference}/pdf/"


def test_an_export_is_logged(client, personas):
    client.force_login(personas.finance)
    assert client.get(reverse("costing:export", args=[2026, "titres", "csv"])).status_code == 200
    assert DocumentAccess.objects.get().document == "titres-2026.csv"


def test_a_refused_download_is_not_logged_as_a_download(client, personas, mad_descendante):  # noqa: F811
    client.force_login(personas.outsider)
    reference = mad_descendante.convention.reference
    assert client.get(reverse("conventions:pdf", args=[reference])).status_code == 404
    assert not DocumentAccess.objects.exists()


@pytest.mark.parametrize(("persona", "status"), [("admin", 200), ("manager", 302)])
def test_only_administrators_read_the_log(client, personas, persona, status):
    client.force_login(getattr(personas, persona))
    response = client.get(reverse("admin:mutualisation_documentaccess_changelist"))
    assert response.status_code == status


def test_entries_older_than_the_retention_are_purged(settings, personas):
    settings.MUTUALIS_AUDIT_RETENTION_DAYS = 180
    old = DocumentAccess.objects.create(username="a", document="ancien.pdf", path="/x")
    recent = DocumentAccess.objects.create(username="a", document="recent.pdf", path="/y")
    DocumentAccess.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=181))
    out = StringIO()
    call_command("purge_document_accesses", stdout=out)
    assert "1 entrée supprimée." in out.getvalue()
    assert list(DocumentAccess.objects.values_list("pk", flat=True)) == [recent.pk]
