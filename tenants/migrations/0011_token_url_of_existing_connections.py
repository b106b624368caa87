"""Record where the tokens of connections made before 0009 came from (tenants.tokens.check_origin).

With the vendor settings (not sandbox mode), existing tokens came from the configured vendor: their token URL is
this deployment's. In sandbox mode only the tokens the built-in sandbox issued (named `fb-…-N` / `atl-…-N`, a
shape no vendor uses) are recorded as the sandbox's; any other stays of unknown origin, so sandbox mode never
sends it anywhere (`manage.py check` names it)."""

import re

from django.conf import settings
from django.db import migrations

SANDBOX_TOKEN = re.compile(r"(fb|atl)-(access|refresh)-\d+")


def record_origins(apps, schema_editor):
    from tenants.oauth import AtlassianProvider, FreshBooksProvider

    for model, provider in (("FreshBooksAccount", FreshBooksProvider()), ("JiraSite", AtlassianProvider())):
        rows = apps.get_model("tenants", model).objects.filter(token_url="")
        for row in rows:
            tokens = [t for t in (row.access_token, row.refresh_token) if t]
            if not tokens or (model == "JiraSite" and row.auth_method != "oauth2"):
                continue
            if settings.SANDBOX and not all(SANDBOX_TOKEN.fullmatch(t) for t in tokens):
                continue
            row.token_url = provider.token_url
            row.save(update_fields=["token_url"])


class Migration(migrations.Migration):
    dependencies = [("tenants", "0010_jira_webhook_sync_lease")]

    operations = [migrations.RunPython(record_origins, migrations.RunPython.noop)]
