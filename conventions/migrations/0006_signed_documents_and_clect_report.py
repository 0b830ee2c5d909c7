"""Signed acts frozen: the PDF of a convention or avenant as signed, with its SHA-256. The
database refuses any UPDATE of a frozen document, on SQLite and PostgreSQL (a later avenant
makes a new document; it never rewrites the signed one)."""

import django.db.models.deletion
from django.db import migrations, models

MESSAGE = "acte signe fige : modification interdite"


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(
            "CREATE TRIGGER conventions_signeddocument_no_update BEFORE UPDATE ON "
            f"conventions_signeddocument BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;"
        )
    elif vendor == "postgresql":
        schema_editor.execute(
            "CREATE OR REPLACE FUNCTION conventions_signeddocument_frozen() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation'; "
            "END; $$ LANGUAGE plpgsql;"
        )
        schema_editor.execute(
            "CREATE TRIGGER conventions_signeddocument_no_update BEFORE UPDATE ON "
            "conventions_signeddocument FOR EACH ROW EXECUTE FUNCTION "
            "conventions_signeddocument_frozen();"
        )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS conventions_signeddocument_no_update;")
    elif vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS conventions_signeddocument_no_update "
            "ON conventions_signeddocument;"
        )
        schema_editor.execute("DROP FUNCTION IF EXISTS conventions_signeddocument_frozen();")


class Migration(migrations.Migration):

    dependencies = [
        ('conventions', '0005_enforceability'),
    ]

    operations = [
        migrations.AddField(
            model_name='convention',
            name='clect_report_on',
            field=models.DateField(blank=True, help_text="Pour un service commun imputé sur l'attribution de compensation (CGI 1609 nonies C) : date du rapport de la commission locale d'évaluation des transferts de charges.", null=True, verbose_name='rapport de la CLECT du'),
        ),
        migrations.AddField(
            model_name='historicalconvention',
            name='clect_report_on',
            field=models.DateField(blank=True, help_text="Pour un service commun imputé sur l'attribution de compensation (CGI 1609 nonies C) : date du rapport de la commission locale d'évaluation des transferts de charges.", null=True, verbose_name='rapport de la CLECT du'),
        ),
        migrations.CreateModel(
            name='SignedDocument',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('signed_on', models.DateField(verbose_name='signé le')),
                ('pdf', models.BinaryField(verbose_name='PDF')),
                ('sha256', models.CharField(editable=False, max_length=64, verbose_name='empreinte SHA-256')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='figé le')),
                ('amendment', models.ForeignKey(blank=True, help_text='Vide pour la convention elle-même.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='signed_documents', to='conventions.amendment', verbose_name='avenant')),
                ('convention', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='signed_documents', to='conventions.convention', verbose_name='convention')),
            ],
            options={
                'verbose_name': 'acte signé (PDF figé)',
                'verbose_name_plural': 'actes signés (PDF figés)',
                'ordering': ['convention', 'signed_on'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('amendment__isnull', True)), fields=('convention',), name='one_signed_document_per_convention'), models.UniqueConstraint(condition=models.Q(('amendment__isnull', False)), fields=('amendment',), name='one_signed_document_per_amendment')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
