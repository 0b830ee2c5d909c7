"""gunicorn settings for production (`gunicorn mutualisation.wsgi`, read from this file).

The Server header names no software or version (an attacker's first lookup); timeouts give a
long PDF or export time to finish while a stuck worker is still replaced.
"""

import gunicorn.http.wsgi

gunicorn.http.wsgi.SERVER = "Mutualis"

bind = "127.0.0.1:8000"
workers = 2
timeout = 60
graceful_timeout = 30
accesslog = "-"  # access log on stdout, for the service manager
