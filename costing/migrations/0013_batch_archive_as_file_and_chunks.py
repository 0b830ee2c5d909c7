"""A batch's ZIP moves from a database column (bytea: 1 GB at most on PostgreSQL, loaded with
the row) to a file in the default storage; the bytes of existing batches are moved to files.
The batch gains its plan and the chunks its workers have finished."""

from django.core.files.base import ContentFile
from django.db import migrations, models


def archive_name(job) -> str:
    return f"etats-{job.year}-{job.pk}.zip"  # under upload_to: batches/<year>/<month>/


def move_archives_to_files(apps, schema_editor):
    BatchJob = apps.get_model("costing", "BatchJob")
    for pk in BatchJob.objects.exclude(archive_bytes=None).values_list("pk", flat=True):
        job = BatchJob.objects.get(pk=pk)  # one archive in memory at a time
        job.archive.save(archive_name(job), ContentFile(bytes(job.archive_bytes)), save=False)
        job.archive_bytes = None
        job.save(update_fields=["archive", "archive_bytes"])


def move_files_to_archives(apps, schema_editor):
    BatchJob = apps.get_model("costing", "BatchJob")
    for job in BatchJob.objects.exclude(archive=""):
        with job.archive.open("rb") as stored:
            job.archive_bytes = stored.read()
        job.archive.delete(save=False)
        job.save(update_fields=["archive", "archive_bytes"])


class Migration(migrations.Migration):
    dependencies = [("costing", "0012_stored_reimbursement_results")]

    operations = [
        migrations.RenameField("batchjob", "archive", "archive_bytes"),
        migrations.AddField(
            model_name="batchjob",
            name="archive",
            field=models.FileField(
                blank=True,
                editable=False,
                max_length=200,
                upload_to="batches/%Y/%m/",
                verbose_name="archive ZIP",
            ),
        ),
        migrations.RunPython(move_archives_to_files, move_files_to_archives, elidable=True),
        migrations.RemoveField("batchjob", "archive_bytes"),
        migrations.AddField(
            model_name="batchjob",
            name="plan",
            field=models.JSONField(
                blank=True, default=dict, editable=False, verbose_name="plan du lot"
            ),
        ),
        migrations.AddField(
            model_name="batchjob",
            name="chunks_total",
            field=models.PositiveIntegerField(default=0, verbose_name="parts du lot"),
        ),
        migrations.AddField(
            model_name="batchjob",
            name="chunks_done",
            field=models.JSONField(
                blank=True, default=list, editable=False, verbose_name="parts terminées"
            ),
        ),
    ]
