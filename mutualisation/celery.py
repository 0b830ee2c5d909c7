"""Celery application. Without CELERY_BROKER_URL, tasks run in-process (eager); with it, on real
workers, which are recycled to cap the memory that PDF rendering accumulates."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mutualisation.settings")

app = Celery("mutualisation")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
