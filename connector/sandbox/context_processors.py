"""The admin's sandbox banner (templates/admin/base_site.html): installed by config/settings.py in sandbox mode."""

from django.conf import settings


def admin_context(request):
    """Template context processor: `sandbox` (the sandbox pages' URLs) in sandbox mode, for the admin banner."""
    if not settings.SANDBOX:
        return {}
    return {
        "sandbox": {"freshbooks": settings.FRESHBOOKS_API_URL + "/", "jira": settings.ATLASSIAN_API_URL + "/"}
    }
