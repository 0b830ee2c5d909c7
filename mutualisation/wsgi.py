"""WSGI entry point (gunicorn mutualisation.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mutualisation.settings")
application = get_wsgi_application()
