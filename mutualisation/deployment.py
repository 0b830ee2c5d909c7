"""Scale-out switches read by the settings (docs/deployment.md): object storage for files, a
read replica for the reports, PgBouncer in transaction mode. Pure functions of the environment's
values, so that each switch is tested without S3, a replica or PgBouncer."""

S3_BACKEND = "storages.backends.s3.S3Storage"
REPLICA = "replica"


def storages_config(*, debug: bool, bucket: str = "", **s3) -> dict:
    """Django's STORAGES: files (attachments, signed scans, usage imports, generated archives)
    on the local disk, or in an S3-compatible bucket when ``bucket`` is set (django-storages);
    static files always served by whitenoise. ``s3``: endpoint_url, region_name, access_key,
    secret_key, location (a prefix inside the bucket), custom_domain."""
    default = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if bucket:
        options = {"bucket_name": bucket, **{k: v for k, v in s3.items() if v}}
        # Private documents: never public, reached only through signed, short-lived URLs, and
        # never overwritten (a new name when one is taken).
        options.update(default_acl=None, querystring_auth=True, file_overwrite=False)
        default = {"BACKEND": S3_BACKEND, "OPTIONS": options}
    return {
        "default": default,
        "staticfiles": {
            "BACKEND": (
                "django.contrib.staticfiles.storage.StaticFilesStorage"
                if debug
                else "whitenoise.storage.CompressedManifestStaticFilesStorage"
            )
        },
    }


def replica_databases(default: dict, replica: dict | None) -> dict:
    """DATABASES with the read replica as ``replica`` when configured. It has the primary's
    options (lock timeout…); under tests it mirrors the primary (no second test database)."""
    databases = {"default": default}
    if replica:
        databases[REPLICA] = {
            **{k: v for k, v in default.items() if k in ("CONN_MAX_AGE", "OPTIONS")},
            **replica,
            "TEST": {"MIRROR": "default"},
        }
    return databases


def pgbouncer(database: dict) -> dict:
    """A database reached through PgBouncer in transaction mode: no server-side cursors (a
    cursor would outlive the transaction's server connection), and no startup ``options`` (which
    PgBouncer refuses: set lock_timeout on the role instead, see docs/deployment.md)."""
    database = {**database, "DISABLE_SERVER_SIDE_CURSORS": True}
    options = {k: v for k, v in database.get("OPTIONS", {}).items() if k != "options"}
    database["OPTIONS"] = options
    return database
