"""factory_boy factories of the models tests create most: one place that knows a valid row of each.

`JiraSiteFactory(tenant=..., base_url=fake_jira.url)` is an API-token Jira Cloud site with the fake Jira's
credentials (connector/sandbox/jira.py); pass any field to override it.
"""

import factory
from factory.django import DjangoModelFactory

from audit.models import Event
from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID
from connector.sandbox.jira import API_TOKEN, EMAIL
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class JiraSiteFactory(DjangoModelFactory):
    class Meta:
        model = JiraSite

    tenant = factory.SubFactory(TenantFactory)
    base_url = "https://acme.atlassian.net"
    email = EMAIL
    api_token = API_TOKEN


class FreshBooksAccountFactory(DjangoModelFactory):
    class Meta:
        model = FreshBooksAccount

    tenant = factory.SubFactory(TenantFactory)
    account_id = ACCOUNT_ID
    business_id = BUSINESS_ID
    business_name = "Acme Books"
    access_token = "fb-access-token"
    refresh_token = "fb-refresh-token"
    status = ConnectionStatus.CONNECTED


class EventFactory(DjangoModelFactory):
    class Meta:
        model = Event

    tenant = factory.SubFactory(TenantFactory)
    name = "invoice.create"
    object_id = "42"
