"""WSGI entry (granian `helpdesk.wsgi:application`, for web and hooks).

Webhook deliveries (`POST /hooks/<platform>/<connection-uuid>/`) take a lean path that
skips URL resolution and the middleware stack (integrations.hooks_wsgi); every other
request goes to Django's handler unchanged. Whole (not streaming) responses of both are
handed to the server as one-item lists, which granian writes without holding the GIL.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
django_application = get_wsgi_application()

from integrations.hooks_wsgi import HooksApplication  # noqa: E402  (needs Django set up)

application = HooksApplication(django_application)
