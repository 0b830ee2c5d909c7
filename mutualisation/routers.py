"""Reports read from the replica (DATABASE_REPLICA_URL): the views named in
MUTUALIS_REPLICA_VIEWS, for GET requests, read the project's own data there; everything else,
writes, sessions and accounts stay on the primary."""

from contextvars import ContextVar

from django.conf import settings

from mutualisation.deployment import REPLICA

# The apps whose reads a report may take from the replica (not auth, sessions, axes: a session
# or a lockout just written must be read back from the primary).
REPLICA_APPS = {"mutualisation", "conventions", "costing"}

reading_report: ContextVar[bool] = ContextVar("reading_report", default=False)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if reading_report.get() and model._meta.app_label in REPLICA_APPS:
            return REPLICA
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, copied: the same rows on both sides

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"  # the replica receives the primary's schema by replication


class ReportsOnReplicaMiddleware:
    """Marks the GET requests of the report views so that the router reads them from the
    replica. Installed only when a replica is configured."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            token = getattr(request, "_replica_token", None)
            if token is not None:
                reading_report.reset(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if request.method in ("GET", "HEAD") and match and match.view_name in replica_views():
            token = reading_report.set(True)
            request._replica_token = token
        return None


def replica_views() -> set[str]:
    return set(getattr(settings, "MUTUALIS_REPLICA_VIEWS", ()))
