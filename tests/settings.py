"""Test settings: the real settings, with fixed test secrets when the environment has none."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("FERNET_KEYS", "test-fernet-key-not-for-production")
os.environ.setdefault("PUBLIC_BASE_URL", "https://connector.example.test")
os.environ.setdefault("FRESHBOOKS_CLIENT_ID", "fb-client-id")
os.environ.setdefault("FRESHBOOKS_CLIENT_SECRET", "fb-client-secret")
os.environ.setdefault("ATLASSIAN_CLIENT_ID", "atl-client-id")
os.environ.setdefault("ATLASSIAN_CLIENT_SECRET", "atl-client-secret")
# The vendor fakes serve plain http on loopback; oauthlib refuses non-https token URLs otherwise.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
# ...and the Jira site URLs of the fakes are loopback http: allowed here only (tests turn it off to check the rule).
os.environ.setdefault("ALLOW_LOCAL_VENDOR_URLS", "1")
# Each test run counts its metrics in a fresh directory (prometheus_client multiprocess mode).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mlc-metrics-"))

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The tests use the vendor sandbox's fakes and pages (connector/sandbox) whatever the sandbox mode.
if "connector.sandbox" not in INSTALLED_APPS:  # noqa: F405
    INSTALLED_APPS.append("connector.sandbox")  # noqa: F405
    TEMPLATES[0]["OPTIONS"]["context_processors"].append(  # noqa: F405
        "connector.sandbox.context_processors.admin_context"
    )
