"""Least privilege (issue 14, and the sensitive-data part of issue 13): every admin page, action, custom admin
view and connect view walked as a staff user with no permissions, a viewer, an operator and an administrator
(the suggested groups of the data migration), asserting what each may see and do — and that no secret value,
nor (without "view sensitive audit data") any payload, fetched record or request/response body, appears in
any response to anyone.

Vendors are the loopback fakes: an action that runs leaves requests on them, one that is refused leaves none.
"""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from audit.models import Alert, Attempt, Event, ReplayBatch
from connector.defaults import create_default_mappings
from connector.freshbooks import registration
from connector.models import IssueMapping, JiraUserMatch, Link, ReconcileState, WorklogRule
from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID, make_fake_freshbooks
from connector.sandbox.freshbooks_auth import install_auth_routes
from connector.sandbox.freshbooks_callbacks import add_callback, install_callback_routes
from connector.sandbox.jira import EMAIL, FakeJira, install_core_routes
from connector.sandbox.jira_issues import install_issue_routes
from connector.sandbox.jira_webhooks import install_webhook_routes
from tenants.api_tokens import issue
from tenants.models import ApiToken, ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite
from tenants.secret_fields import MASK

pytestmark = pytest.mark.django_db

SECRETS = {
    "fb_access": "SECRET-fb-access-7c1d",
    "fb_refresh": "SECRET-fb-refresh-91ab",
    "verifier": "SECRET-verifier-55e0",
    "jira_api_token": "SECRET-jira-token-a3f9",
    "jira_access": "SECRET-jira-access-e27c",
    "jira_refresh": "SECRET-jira-refresh-6d08",
    "jira_webhook_secret": "SECRET-jira-hook-0b6e",
}
SENSITIVE = {
    "payload": "PAYLOAD-mark-2d4",
    "record": "RECORD-mark-8e1",
    "request": "REQUEST-mark-4c7",
    "response": "RESPONSE-mark-f90",
}
ROLES = ("nobody", "viewer", "operator", "administrator")
OPS = {"operator", "administrator"}
ADMIN = {"administrator"}
APPEND_ONLY = {
    Event,
    Attempt,
    Link,
    ReconcileState,
    Alert,
    ReplayBatch,
}  # nobody adds or deletes these in the admin
# model → {action: roles that may run it}
ACTIONS = {
    "tenant": {
        "test_connection": OPS,
        "register_freshbooks_webhooks": OPS,
        "pause_selected": OPS,
        "resume_selected": OPS,
        "delete_selected": ADMIN,
    },
    "freshbooksaccount": {"delete_selected": ADMIN},
    "freshbookswebhook": {"resend_verification": OPS, "delete_selected": ADMIN},
    "jirasite": {"register_jira_webhooks": OPS, "refresh_jira_webhooks": OPS, "delete_selected": ADMIN},
    "issuemapping": {"delete_selected": ADMIN},
    "worklogrule": {"delete_selected": ADMIN},
    "jirausermatch": {"delete_selected": ADMIN},
    "link": {},
    "event": {"replay_selected": OPS, "rollback_selected": OPS},
    "attempt": {},
    "failedevent": {"replay_selected": OPS, "resolve_selected": OPS, "assign_selected": OPS},
    "replaybatch": {},
    "reconcilestate": {"reconcile_now": OPS},
    "alert": {},
    # Every role makes and revokes its own API tokens; administrators also other users' (tenants 0007_api_tokens).
    "apitoken": {"revoke_selected": {"viewer", *OPS}, "delete_selected": ADMIN},
}


@pytest.fixture
def vendors(settings):
    fb = install_callback_routes(install_auth_routes(make_fake_freshbooks()))
    fb.state["access_tokens"].add(SECRETS["fb_access"])
    jira = FakeJira(api_token=SECRETS["jira_api_token"])
    install_webhook_routes(install_issue_routes(install_core_routes(jira)))
    settings.FRESHBOOKS_API_URL = settings.FRESHBOOKS_AUTH_URL = fb.url
    settings.ATLASSIAN_AUTH_URL = "https://auth.atlassian.test"  # only redirected to, never called
    yield fb, jira
    fb.close()
    jira.close()


@pytest.fixture
def world(tenant, vendors, django_user_model):
    """One object of every model in the admin, holding every kind of secret and sensitive value."""
    fb, jira = vendors
    add_callback(fb, "invoice.create", registration.webhook_uri(), callback_id=1001)  # kept by "register"
    owner = django_user_model.objects.create_user("token-owner", password="pass-123456789", is_staff=True)
    token, SECRETS["api_token"] = issue(owner, "owner's script")
    account = FreshBooksAccount.objects.create(
        tenant=tenant, account_id=ACCOUNT_ID, business_id=BUSINESS_ID, business_name="Acme Books",
        access_token=SECRETS["fb_access"], refresh_token=SECRETS["fb_refresh"], status=ConnectionStatus.CONNECTED,
        token_expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    hook = FreshBooksWebhook.objects.create(
        account=account, callback_id=1001, event="invoice.create", uri=registration.webhook_uri(),
        verifier=SECRETS["verifier"],
    )  # fmt: skip
    site = JiraSite.objects.create(
        tenant=tenant, base_url=jira.url, deployment="cloud", auth_method=JiraSite.AuthMethod.BASIC, email=EMAIL,
        api_token=SECRETS["jira_api_token"], access_token=SECRETS["jira_access"],
        refresh_token=SECRETS["jira_refresh"], webhook_secret=SECRETS["jira_webhook_secret"],
        status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    create_default_mappings(tenant, "FIN")
    event = Event.objects.create(
        tenant=tenant, name="invoice.create", object_id="42", account_id=ACCOUNT_ID, business_id=BUSINESS_ID,
        payload={"note": SENSITIVE["payload"]}, record={"notes": SENSITIVE["record"]}, status="failed",
        status_detail="Jira POST issue → 500",
    )  # fmt: skip
    return {
        "tenant": tenant,
        "freshbooksaccount": account,
        "freshbookswebhook": hook,
        "jirasite": site,
        "issuemapping": IssueMapping.objects.filter(tenant=tenant).first(),
        "worklogrule": WorklogRule.objects.create(tenant=tenant, match_kind="project", match_value="1", issue_key="FIN-1"),
        "jirausermatch": JiraUserMatch.objects.create(tenant=tenant, kind="client", freshbooks_id="7", jira_account_id="a7"),
        "link": Link.objects.create(
            tenant=tenant, dedupe_key="acme:invoice:42", object_type="invoice", object_id="42", state="created",
            jira_issue_key="FIN-1", jira_issue_id="10001", event=event,
        ),
        "event": event,
        "attempt": Attempt.objects.create(
            event=event, action="POST /rest/api/3/issue", request={"json": SENSITIVE["request"]},
            response=SENSITIVE["response"], http_status=500,
        ),
        "reconcilestate": ReconcileState.objects.create(tenant=tenant, last_result="ok"),
        "replaybatch": ReplayBatch.objects.create(description="2 failed events", event_ids=[event.pk], requested_by="admin:x", total=1),
        "alert": Alert.objects.create(
            tenant=tenant, kind="event_failed", subject="invoice", hour=timezone.now(),
            first_at=timezone.now(), last_at=timezone.now(),
        ),
        "apitoken": token,
    }  # fmt: skip


@pytest.fixture
def users(django_user_model, suggested_groups):
    found = {}
    for role in ROLES:
        user = django_user_model.objects.create_user(role, password="pass-123456789", is_staff=True)
        if role != "nobody":
            user.groups.add(Group.objects.get(name=role))
            issue(user, f"{role}'s script")  # their own token: the token list offers its actions
        found[role] = user
    return found


def registered_models():
    """Every model of the connector's apps in the admin: a new one fails the walk until ACTIONS knows it."""
    models = [m for m in admin.site._registry if m._meta.app_label in ("tenants", "connector", "audit")]
    assert {m._meta.model_name for m in models} <= set(ACTIONS), "declare the new admin's actions in ACTIONS"
    return models


def page_status(role, model, page):
    if isinstance(model, ApiToken):  # another user's token: administrators only; every role may make its own
        if role == "nobody":  # its history page looks the token up before the permission: "not found"
            return 302 if page == "history" else 403
        if page in ("add", "changelist") or role == "administrator":
            return 200
        return 403 if page == "delete" else 302  # the admin's "not found" redirect
    if role == "nobody":
        return 403
    if page in ("changelist", "change", "history"):
        return 200
    if role != "administrator" or type(model) in APPEND_ONLY:
        return 403
    return 200


def messages_in(response):
    page = response.content.decode()
    found = re.search(r'<ul class="messagelist">(.*?)</ul>', page, re.S)
    return (
        [unescape(m).strip() for m in re.findall(r"<li[^>]*>(.*?)</li>", found.group(1), re.S)]
        if found
        else []
    )


def offered_actions(response):
    return set(re.findall(r'<option value="(\w+)"', response.content.decode())) - {""}


def test_every_admin_page_action_and_connect_view_by_role(client, world, users, vendors):
    fb, jira = vendors
    seen = {role: [] for role in ROLES}
    event = world["event"]

    def visit(role, response):
        seen[role].append((response.request["PATH_INFO"], response.content.decode(errors="replace")))
        return response

    for role in ROLES:
        client.force_login(users[role])
        calls_before = len(fb.calls()) + len(jira.calls())
        queued_before = OrmQ.objects.count()
        index = visit(role, client.get(reverse("admin:index")))
        assert index.status_code == 200
        for model in registered_models():
            app, name = model._meta.app_label, model._meta.model_name
            Event.objects.filter(pk=event.pk).update(status="failed")  # replayed by the previous admin's walk
            obj = world[model._meta.concrete_model._meta.model_name]  # a proxy admin shows its base's rows
            for page in ("changelist", "change", "history", "add", "delete"):
                args = [] if page in ("changelist", "add") else [obj.pk]
                response = visit(role, client.get(reverse(f"admin:{app}_{name}_{page}", args=args)))
                assert response.status_code == page_status(role, obj, page), (role, name, page)
            if role != "administrator":  # a view-only page cannot be posted to either
                change = reverse(f"admin:{app}_{name}_change", args=[obj.pk])
                refused = (
                    302 if isinstance(obj, ApiToken) and role != "nobody" else 403
                )  # not found: not theirs
                assert client.post(change, {}).status_code == refused, (role, name)
            # Actions: exactly the expected ones are offered; the others are refused when posted anyway.
            changelist = reverse(f"admin:{app}_{name}_changelist")
            allowed = {action for action, roles in ACTIONS[name].items() if role in roles}
            if role != "nobody":
                assert offered_actions(client.get(changelist)) == allowed, (role, name)
            for action in ACTIONS[name]:
                form = {"action": action, "_selected_action": [obj.pk], "index": 0}
                response = visit(role, client.post(changelist, form, follow=True))
                if role == "nobody":
                    assert response.status_code == 403
                elif action in allowed:
                    assert response.status_code == 200 and "No action selected." not in messages_in(response)
                elif allowed:  # the action form is there, without this action
                    assert "No action selected." in messages_in(response), (role, name, action)
                else:  # no action form at all: the post is just the list again
                    assert response.status_code == 200 and not messages_in(response), (role, name, action)

        # The task queue's pages (django-q2): the administrator's only.
        for name in ("success", "failure", "schedule", "ormq"):
            response = visit(role, client.get(reverse(f"admin:django_q_{name}_changelist")))
            assert response.status_code == (200 if role == "administrator" else 403), (role, name)

        # Custom admin views.
        replayed = visit(role, client.post(reverse("admin:audit_event_replay", args=[event.pk])))
        assert replayed.status_code == (302 if role in OPS else 403)
        confirm = visit(role, client.get(reverse("admin:audit_event_rollback", args=[event.pk])))
        assert confirm.status_code == (200 if role in OPS else 403)
        preview = reverse("admin:connector_issuemapping_preview", args=[world["issuemapping"].pk])
        assert visit(role, client.get(preview)).status_code == (403 if role == "nobody" else 200)
        event_page = visit(role, client.get(reverse("admin:audit_event_change", args=[event.pk])))
        if event_page.status_code == 200:
            buttons = event_page.content.decode()
            assert ('id="replay-event"' in buttons) == ('id="rollback-event"' in buttons) == (role in OPS)

        # Connect views: the tenant and its connection must be changeable; GET confirms, POST starts.
        tenant_page = visit(
            role, client.get(reverse("admin:tenants_tenant_change", args=[world["tenant"].pk]))
        )
        for vendor in ("freshbooks", "jira"):
            url = f"/oauth/{vendor}/connect/{world['tenant'].slug}/"
            shown = visit(role, client.get(url))
            started = client.post(url)
            if role == "administrator":
                assert shown.status_code == 200 and 'method="post"' in shown.content.decode()
                assert started.status_code == 302 and "state=" in started["Location"]
                assert f'id="connect-{vendor}"' in tenant_page.content.decode()
            else:
                assert shown.status_code == started.status_code == 403, (role, vendor)
                assert not client.session.get(f"oauth_state:{vendor}")
                assert f'id="connect-{vendor}"' not in tenant_page.content.decode()

        # What ran: nothing reached a vendor or the queue for the roles without the permissions.
        ran = len(fb.calls()) + len(jira.calls()) - calls_before
        queued = OrmQ.objects.count() - queued_before
        if role in ("nobody", "viewer"):
            assert ran == 0 and queued == 0, role
        else:
            assert ran > 0 and queued > 0, role
        Event.objects.filter(pk=event.pk).update(status="failed")  # replayable again for the next role
        FreshBooksWebhook.objects.filter(pk=world["freshbookswebhook"].pk).update(
            verifier=SECRETS["verifier"]
        )

    for role, responses in seen.items():
        for path, body in responses:
            leaked = [name for name, value in SECRETS.items() if value in body]
            assert not leaked, f"{role} saw {leaked} at {path}"
            sensitive = [name for name, value in SENSITIVE.items() if value in body]
            if role in ("nobody", "viewer"):
                assert not sensitive, f"{role} saw {sensitive} at {path}"
    # The operator and the administrator hold "view sensitive audit data": the same pages show it to them.
    for role in OPS:
        shown = " ".join(body for _path, body in seen[role])
        assert all(value in shown for value in SENSITIVE.values()), role
    viewer_site = [b for p, b in seen["viewer"] if p.endswith(f"/jirasite/{world['jirasite'].pk}/change/")]
    assert viewer_site and f"{MASK} (set)" in viewer_site[0]


# --- one test per finding ----------------------------------------------------------------------------------


def staff_with(django_user_model, *perms, name="staff"):
    """A staff user holding exactly `perms` ("app.codename")."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(name, password="pass-123456789", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def test_view_only_staff_see_secrets_masked(client, world, django_user_model):
    client.force_login(
        staff_with(
            django_user_model,
            "tenants.view_jirasite",
            "tenants.view_freshbooksaccount",
            "tenants.view_freshbookswebhook",
        )  # fmt: skip
    )
    for name in ("jirasite", "freshbooksaccount", "freshbookswebhook"):
        page = client.get(reverse(f"admin:tenants_{name}_change", args=[world[name].pk]))
        body = page.content.decode()
        assert page.status_code == 200
        assert not [key for key, value in SECRETS.items() if value in body], name
        assert f"{MASK} (set)" in body and "replace it" not in body, (
            name
        )  # no "replace" without change rights


def test_users_who_may_change_get_a_blank_replace_input(client, world, django_user_model):
    client.force_login(staff_with(django_user_model, "tenants.view_jirasite", "tenants.change_jirasite"))
    body = client.get(reverse("admin:tenants_jirasite_change", args=[world["jirasite"].pk])).content.decode()
    assert 'type="password" name="api_token"' in body and "Type a new value to replace it" in body
    assert not [key for key, value in SECRETS.items() if value in body]


def test_view_permission_does_not_roll_back_or_replay(client, connected, fb, jira, django_user_model):
    from connector.schedules import ROLLBACK
    from tests.processing import issues, process, run_queued

    event = process(connected, "invoice.create", 987654)
    assert event.status == "succeeded" and len(issues(jira)) == 1
    viewer = staff_with(django_user_model, "audit.view_event")
    client.force_login(viewer)

    rollback = client.post(reverse("admin:audit_event_rollback", args=[event.pk]), {"post": "yes"})
    replay = client.post(reverse("admin:audit_event_replay", args=[event.pk]))
    action = client.post(
        reverse("admin:audit_event_changelist"),
        {"action": "rollback_selected", "_selected_action": [event.pk], "index": 0, "post": "yes"},
    )

    assert rollback.status_code == replay.status_code == 403 and action.status_code in (200, 302)
    assert len(issues(jira)) == 1 and not jira.calls("DELETE")
    event.refresh_from_db()
    assert event.status == "succeeded" and not OrmQ.objects.exists()
    # With the dedicated permission the same POST queues the rollback; the worker deletes the issue.
    rollbacker = staff_with(django_user_model, "audit.view_event", "audit.rollback_event", name="rollbacker")
    client.force_login(rollbacker)
    done = client.post(reverse("admin:audit_event_rollback", args=[event.pk]), {"post": "yes"})
    assert done.status_code == 302 and run_queued(ROLLBACK) and issues(jira) == []


def test_connection_actions_need_their_permission(client, world, vendors, django_user_model):
    fb, jira = vendors
    client.force_login(
        staff_with(
            django_user_model,
            "tenants.view_tenant",
            "tenants.view_jirasite",
            "tenants.view_freshbookswebhook",
            "tenants.change_tenant",
            "tenants.change_jirasite",
            "tenants.change_freshbookswebhook",
        )  # fmt: skip
    )
    posts = [
        ("tenants_tenant", world["tenant"], "test_connection"),
        ("tenants_tenant", world["tenant"], "register_freshbooks_webhooks"),
        ("tenants_jirasite", world["jirasite"], "register_jira_webhooks"),
        ("tenants_jirasite", world["jirasite"], "refresh_jira_webhooks"),
        ("tenants_freshbookswebhook", world["freshbookswebhook"], "resend_verification"),
    ]
    for name, obj, action in posts:
        form = {"action": action, "_selected_action": [obj.pk], "index": 0}
        client.post(reverse(f"admin:{name}_changelist"), form)
    assert not fb.calls() and not jira.calls(), "change permission alone runs none of them"


def test_connect_needs_change_permissions_and_a_post(client, world, django_user_model, settings):
    tenant, site = world["tenant"], world["jirasite"]
    nobody = staff_with(django_user_model, name="nobody")
    half = staff_with(django_user_model, "tenants.change_tenant", "tenants.view_jirasite", name="half")
    full = staff_with(django_user_model, "tenants.change_tenant", "tenants.change_jirasite", name="full")
    url = f"/oauth/jira/connect/{tenant.slug}/"
    for user in (nobody, half):
        client.force_login(user)
        assert client.get(url).status_code == 403 and client.post(url).status_code == 403
        assert not client.session.get("oauth_state:jira")
    client.force_login(full)
    confirm = client.get(url)
    assert confirm.status_code == 200 and not client.session.get("oauth_state:jira"), "a GET starts nothing"
    assert client.post(url)["Location"].startswith(settings.ATLASSIAN_AUTH_URL)
    site.refresh_from_db()
    assert site.api_token == SECRETS["jira_api_token"], "nothing replaced yet"


def test_connect_post_is_csrf_protected(world, django_user_model):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_with(django_user_model, "tenants.change_tenant", "tenants.change_jirasite"))
    url = f"/oauth/jira/connect/{world['tenant'].slug}/"
    assert client.post(url).status_code == 403
    page = client.get(url).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302


def test_callback_and_choice_recheck_the_permissions(client, tenant, atl, django_user_model):
    user = staff_with(django_user_model, "tenants.change_tenant", "tenants.add_jirasite")
    client.force_login(user)
    authorize = client.post(f"/oauth/jira/connect/{tenant.slug}/")["Location"]
    state = re.search(r"state=([^&]+)", authorize).group(1)
    user.user_permissions.clear()  # the permission is withdrawn while the user is at Atlassian
    callback = client.get("/oauth/jira/callback/", {"code": "any-code", "state": state})
    assert callback.status_code == 403 and "You may not connect Jira" in callback.content.decode()
    assert not atl.calls("POST", "/oauth/token") and not JiraSite.objects.exists()


def test_issue_13_sensitive_audit_data_needs_its_permission(client, world, django_user_model):
    event, attempt = world["event"], world["attempt"]
    pages = [
        reverse("admin:audit_event_change", args=[event.pk]),
        reverse("admin:audit_attempt_change", args=[attempt.pk]),
        reverse("admin:audit_event_changelist"),
        reverse("admin:audit_attempt_changelist"),
        reverse("admin:audit_event_history", args=[event.pk]),
    ]
    client.force_login(staff_with(django_user_model, "audit.view_event", "audit.view_attempt"))
    bodies = [client.get(url).content.decode() for url in pages]
    assert "invoice.create" in bodies[0] and "Jira POST issue → 500" in bodies[0]  # the metadata is there
    assert "POST /rest/api/3/issue" in bodies[1]
    assert not [v for v in SENSITIVE.values() for body in bodies if v in body]
    client.force_login(
        staff_with(
            django_user_model,
            "audit.view_event",
            "audit.view_attempt",
            "audit.view_sensitive_data",
            name="auditor",
        )  # fmt: skip
    )
    shown = client.get(pages[0]).content.decode() + client.get(pages[1]).content.decode()
    assert all(value in shown for value in SENSITIVE.values())


def test_resubmitting_queue_tasks_needs_change_permission(client, db, django_user_model):
    from django_q.models import Task

    failed = Task.objects.create(
        id="a" * 32, name="failed-one", func="connector.tasks.process_event", args=(1,), kwargs={},
        started=timezone.now(), stopped=timezone.now(), success=False,
    )  # fmt: skip
    form = {"action": "resubmit_task", "_selected_action": [failed.pk], "index": 0}
    url = reverse("admin:django_q_failure_changelist")
    client.force_login(staff_with(django_user_model, "django_q.view_failure", name="watcher"))
    assert client.get(url).status_code == 200
    client.post(url, form)
    assert not OrmQ.objects.exists() and Task.objects.filter(pk=failed.pk).exists()
    client.force_login(staff_with(django_user_model, "django_q.view_failure", "django_q.change_failure"))
    client.post(url, form)
    assert OrmQ.objects.count() == 1


def test_issue_13_action_results_show_no_sensitive_data_without_the_permission(
    client, world, django_user_model
):
    """A user who may replay and roll back, but not view sensitive data: pages, the attempts inline, the
    action results and the rollback confirmation carry metadata only."""
    event = world["event"]
    client.force_login(
        staff_with(
            django_user_model,
            "audit.view_event",
            "audit.view_attempt",
            "audit.replay_event",
            "audit.rollback_event",
        )  # fmt: skip
    )
    changelist = reverse("admin:audit_event_changelist")
    responses = [
        client.get(reverse("admin:audit_event_change", args=[event.pk])),  # with the attempts inline
        client.post(
            changelist, {"action": "replay_selected", "_selected_action": [event.pk], "index": 0}, follow=True
        ),
        client.post(changelist, {"action": "rollback_selected", "_selected_action": [event.pk], "index": 0}),
        client.get(reverse("admin:audit_event_rollback", args=[event.pk])),
        client.get(reverse("admin:audit_attempt_change", args=[world["attempt"].pk])),
    ]
    assert "Queued 1 event(s) for replay" in responses[1].content.decode()
    assert "Roll back events?" in responses[2].content.decode()
    for response in responses:
        body = response.content.decode()
        assert response.status_code == 200
        assert not [name for name, value in SENSITIVE.items() if value in body]


def test_the_choice_rechecks_the_permissions(client, tenant, fb_auth, django_user_model):
    from tests.tenants.test_views import TWO_BUSINESSES, start, vendor_page_link

    fb_auth.state["memberships"] = TWO_BUSINESSES
    user = staff_with(django_user_model, "tenants.change_tenant", "tenants.add_freshbooksaccount")
    client.force_login(user)
    page = client.get(*vendor_page_link(start(client, "freshbooks"), "approve"))
    assert page.status_code == 200 and "Bayern Corporation" in page.content.decode()
    user.user_permissions.clear()  # withdrawn while the choice page is open
    response = client.post("/oauth/freshbooks/choose/", {"choice": "438000"})
    assert response.status_code == 403 and not FreshBooksAccount.objects.exists()


def test_every_admin_action_declares_its_permission():
    """Django lets an action run for anyone who may view the list unless it declares permissions."""
    undeclared = [
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        for func, name, _description in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]
    assert not undeclared, undeclared
