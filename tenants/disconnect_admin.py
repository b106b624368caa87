"""Disconnect a tenant's FreshBooks business from the tenant page (Connections → Disconnect): a confirmation
page, then the connector's callbacks are deleted at FreshBooks (best effort: a dead token or an outage is
reported, and the callbacks are then left for the operator to delete in FreshBooks) and the account, its
tokens and its callback rows are removed. The business can then be connected to another tenant, which is what
the connect flow asks for when a business is bound elsewhere. Needs "Can delete FreshBooks account"."""

import requests
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path

from connector.errors import ConnectorError
from connector.freshbooks.client import FreshBooksClient
from tenants.models import FreshBooksAccount, Tenant

PERMISSION = "tenants.delete_freshbooksaccount"


def delete_callbacks(account, actor):
    """Delete the account's callbacks at FreshBooks (404: already gone). Returns the reason they could not
    all be deleted, or ""."""
    client = FreshBooksClient(account, actor=actor)
    for callback_id in account.webhooks.values_list("callback_id", flat=True):
        try:
            client.delete_callback(callback_id)
        except (ConnectorError, requests.RequestException) as exc:
            if getattr(exc, "status", None) != 404:
                return str(exc) or type(exc).__name__
    return ""


class DisconnectAdmin:
    def disconnect_urls(self):
        view = self.admin_site.admin_view(self.disconnect_freshbooks_view)
        route = "<path:object_id>/disconnect-freshbooks/<int:account_id>/"
        return [path(route, view, name="tenants_tenant_disconnect_freshbooks")]

    def disconnect_freshbooks_view(self, request, object_id, account_id):
        """GET: what will happen; POST: disconnect, then back to the tenant page."""
        tenant = get_object_or_404(Tenant, pk=object_id)
        account = get_object_or_404(FreshBooksAccount, pk=account_id, tenant=tenant)
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        if request.method == "POST":
            problem = delete_callbacks(account, actor=f"admin:{request.user.get_username()}")
            name = account.business_name or account.account_id
            account.delete()
            self.log_change(request, tenant, f"Disconnected the FreshBooks business {name}")
            self.message_user(
                request,
                f"FreshBooks business {name} is disconnected from {tenant}: it can be connected to another "
                "tenant now.",
                messages.SUCCESS,
            )
            if problem:
                self.message_user(
                    request,
                    f"Its callbacks could not be deleted at FreshBooks ({problem}): delete them there "
                    "(FreshBooks → Settings → Webhooks), or they keep posting deliveries the connector refuses.",
                    messages.WARNING,
                )
            return redirect("admin:tenants_tenant_change", tenant.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Disconnect FreshBooks from {tenant}?",
            "opts": self.model._meta,
            "original": tenant,
            "account": account,
            "callbacks": account.webhooks.count(),
        }
        return TemplateResponse(request, "admin/tenants/tenant/disconnect_freshbooks.html", context)
