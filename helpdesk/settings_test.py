"""Test overlay: only what makes the suite fast. Everything else is production settings."""

from helpdesk.settings import *  # noqa: F403
from helpdesk.settings import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
CELERY_TASK_ALWAYS_EAGER = True
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "100000/min"}}

# Each test process gets its own cache namespace in the shared Redis, so rate-limit and
# lockout counters of parallel workers never meet.
import os as _os  # noqa: E402

from helpdesk.settings import CACHES as _CACHES  # noqa: E402

CACHES = {"default": {**_CACHES["default"], "KEY_PREFIX": f"sdtest{_os.getpid()}"}}
