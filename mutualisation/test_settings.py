"""Settings for the test suite: the real settings, made fast and self-contained.

DEBUG stays off (pytest-django forces it anyway) so the tests exercise production behaviour,
except where noted below.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-" + "x" * 60)
# The tests run the production settings, whatever a developer's .env says.
os.environ.setdefault("DJANGO_DEBUG", "false")

from mutualisation.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The test client speaks plain HTTP and templates use {% static %} without a collectstatic step.
SECURE_SSL_REDIRECT = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# seed_demo is tested with its demo accounts; a test turns this off to prove the guard.
DEMO_USERS_ENABLED = True
# Serve static files from the finders (static/, node_modules) as in development.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# A file-backed SQLite test database, so that a real Celery worker started by a test can open
# it too (pytest-django suffixes the name per xdist worker).
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    VAR_DIR.mkdir(exist_ok=True)  # noqa: F405 (absent from a fresh clone)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-mutualis.sqlite3")}  # noqa: F405
