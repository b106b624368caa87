"""Django's error reports, made safe to mail: scrubbed of secrets and throttled.

- `ScrubbingFilter` (settings.DEFAULT_EXCEPTION_REPORTER_FILTER): besides Django's own list (API, TOKEN, KEY,
  SECRET, PASS, SIGNATURE, HTTP_COOKIE), hides every setting and request header whose name mentions a URL,
  a database, Redis, the task cluster, mail, a DSN, a verifier or authorization — connection URLs carry
  passwords (REDIS_URL, DATABASE_URL, EMAIL_URL and Q_CLUSTER["redis"]).
- `ThrottledErrorMailHandler` (on the django.request logger only when ERROR_MAILS=1): mails ADMINS about a
  server error (status 500 and up), at most one per ERROR_MAIL_INTERVAL seconds in each process, as text
  without the HTML page. Requests refused with a 4xx never mail.
"""

import re
import threading
import time

from django.conf import settings
from django.utils.log import AdminEmailHandler
from django.views.debug import SafeExceptionReporterFilter


class ScrubbingFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DATABASE|REDIS|Q_CLUSTER|EMAIL|ADMINS|DSN|"
        "VERIFIER|AUTH",
        flags=re.IGNORECASE,
    )


class ThrottledErrorMailHandler(AdminEmailHandler):
    """AdminEmailHandler for server errors only, one mail per ERROR_MAIL_INTERVAL seconds per process."""

    _lock = threading.Lock()
    _last_sent = None  # time.monotonic() of the last mail of this process

    def __init__(self):
        super().__init__(include_html=False)

    def emit(self, record):
        if getattr(record, "status_code", 500) < 500:
            return
        with self._lock:
            now = time.monotonic()
            last = type(self)._last_sent
            if last is not None and now - last < settings.ERROR_MAIL_INTERVAL:
                return
            type(self)._last_sent = now
        super().emit(record)
