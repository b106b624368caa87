"""Connect checks what it binds: a Jira site chosen from Atlassian's accessible resources is saved Connected only
when the grant covers it with the scopes the connector needs and its API answers; a FreshBooks business only when
its accounting API answers. Otherwise the operator sees why and nothing is saved."""

import pytest

from connector.sandbox.atlassian import site
from tenants.models import FreshBooksAccount, JiraSite
from tests.tenants.test_views import TWO_BUSINESSES, start, vendor_page_link

pytestmark = pytest.mark.django_db
BETA = "99999999-0000-0000-0000-000000000000"


def two_sites(atl):
    atl.state["sites"] = [site(), site(cloud_id=BETA, name="beta", url="https://beta.atlassian.net")]


def test_a_chosen_site_whose_api_does_not_answer_is_not_saved(staff_client, tenant, atl):
    two_sites(atl)
    atl.state["unreachable"] = [BETA]  # listed by accessible-resources, but the API answers 404 for it
    assert staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve")).status_code == 200

    refused = staff_client.post("/oauth/jira/choose/", {"choice": BETA})

    assert refused.status_code == 502
    assert "Could not read the Jira site https://beta.atlassian.net: HTTP 404." in refused.content.decode()
    assert not JiraSite.objects.exists()
    assert atl.jira.calls("GET", f"/ex/jira/{BETA}/rest/api/3/myself")


def test_the_only_site_is_checked_too(staff_client, tenant, atl):
    atl.state["unreachable"] = [site()["id"]]
    response = staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve"))
    assert response.status_code == 502 and not JiraSite.objects.exists()


def test_a_site_granted_without_the_needed_scopes_is_not_saved(staff_client, tenant, atl):
    atl.state["sites"] = [{**site(), "scopes": ["read:jira-work", "read:jira-user"]}]

    response = staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve"))

    assert response.status_code == 403
    page = response.content.decode()
    assert "lacks write:jira-work, manage:jira-webhook" in page and "connect again" in page
    assert not JiraSite.objects.exists()


def test_a_site_that_answers_is_saved_connected(staff_client, tenant, atl):
    two_sites(atl)
    staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve"))
    assert staff_client.post("/oauth/jira/choose/", {"choice": BETA}).status_code == 302
    assert JiraSite.objects.get().cloud_id == BETA


def test_a_freshbooks_business_whose_accounting_is_denied_is_not_saved(staff_client, tenant, fb_auth):
    fb_auth.state["memberships"] = TWO_BUSINESSES
    fb_auth.state["denied_accounts"] = ["ABC124"]
    assert (
        staff_client.get(*vendor_page_link(start(staff_client, "freshbooks"), "approve")).status_code == 200
    )

    refused = staff_client.post("/oauth/freshbooks/choose/", {"choice": "438000"})

    assert refused.status_code == 502
    assert "Could not read the business Bayern Corporation: HTTP 403." in refused.content.decode()
    assert not FreshBooksAccount.objects.exists()
