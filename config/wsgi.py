import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
try:
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
except ImproperlyConfigured as exc:  # one clear line instead of a traceback
    sys.stderr.write(f"Configuration error: {exc}\n")
    sys.exit(4)  # gunicorn's "app failed to load" exit code stops the arbiter
