"""The operator API's endpoints (/api/v1/): tenants with their health, events with their attempts, and the
admin's actions (replay, rollback, reconcile now, pause and resume), each under the admin's permission for it.

Actions run the same code as the admin (connector.replay, connector.rollback, the reconcile task) and are
recorded as there: who asked ("api:<user>") on the event and the attempts the action makes, and a line in the
object's admin history. What writes to Jira runs in the worker: the request checks and queues it (202)."""

from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import Attempt, Event
from audit.overview import tenant_health
from config.queueing import enqueue
from connector.api import examples, serializers
from connector.api.base import ApiSettings, Conflict, actor, record
from connector.api.filters import EventFilter, TenantFilter
from connector.api.permissions import SENSITIVE, STAFF, CanPause, CanReconcile, CanReplay, CanRollback, needs
from connector.replay import replay
from connector.rollback import RollbackConflict, RollbackFailed, RollbackRefused, plan, refusal
from connector.rollback import queue as queue_rollback
from connector.schedules import RECONCILE
from tenants import pausing
from tenants.models import Tenant

SECRET_FIELDS = ("payload", "record")
ATTEMPT_BODIES = ("request", "response", "previous")


def validated(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema_view(
    list=extend_schema(summary="Tenants with their health", examples=[examples.TENANT_PAGE]),
    retrieve=extend_schema(summary="One tenant with its health", examples=[examples.TENANT]),
)
class TenantViewSet(ApiSettings, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tenants with their health: connections, webhooks, backlog and last reconcile, as the admin's health
    panel computes it (audit.overview)."""

    queryset = Tenant.objects.order_by("name", "id")
    serializer_class = serializers.TenantSerializer
    filterset_class = TenantFilter
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    @staticmethod
    def with_health(tenants):
        tenants = list(tenants)
        for item in tenant_health(tenants=tenants):
            item.tenant.health = item
        return tenants

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(self.with_health(page), many=True).data)

    def retrieve(self, request, *args, **kwargs):
        tenant = self.with_health([self.get_object()])[0]
        return Response(self.get_serializer(tenant).data)

    @extend_schema(
        summary="Reconcile now",
        description="Queue one reconcile pass of the tenant for the worker (the admin's “Reconcile now”; "
        "needs connector.reconcile_now). Its result shows in the tenant's `health.reconcile` when done.",
        request=None,
        responses={
            202: serializers.ReconcileQueuedSerializer,
            409: OpenApiResponse(description="Inactive, or no FreshBooks account connected."),
        },
        examples=[examples.RECONCILE_QUEUED],
    )
    @action(detail=True, methods=["post"], permission_classes=needs(CanReconcile))
    def reconcile(self, request, *args, **kwargs):
        tenant = self.get_object()
        if not tenant.active:
            raise Conflict("The tenant is inactive: its reconcile does not run.")
        if not tenant.freshbooks_accounts.exists():
            raise Conflict("The tenant has no FreshBooks account connected: there is nothing to reconcile.")
        who = actor(request)
        task_id = enqueue(RECONCILE, tenant.pk, actor=who)
        record(request, tenant, f"Reconcile requested by {who}")
        return Response({"tenant": tenant.slug, "task_id": task_id}, status=status.HTTP_202_ACCEPTED)

    def paused(self, tenant, changed, queued=None):
        return Response(
            {
                "tenant": tenant.slug,
                "paused": tenant.paused_at is not None,
                "changed": changed,
                "paused_at": tenant.paused_at,
                "paused_by": tenant.paused_by,
                "pause_note": tenant.pause_note,
                "queued": queued,
            }
        )

    @extend_schema(
        summary="Pause the tenant's sync",
        description="Deliveries are still received, verified and stored; nothing is sent to Jira until it is "
        "resumed (tenants.pausing; the admin's “Pause sync”, needs tenants.pause_tenant). Pausing a paused "
        "tenant changes nothing (`changed` false).",
        request=serializers.PauseSerializer,
        responses={200: serializers.PauseResultSerializer},
        examples=[examples.PAUSE_REQUEST, examples.PAUSED],
    )
    @action(detail=True, methods=["post"], permission_classes=needs(CanPause))
    def pause(self, request, *args, **kwargs):
        tenant = self.get_object()
        note = validated(serializers.PauseSerializer, request)["note"]
        changed = pausing.pause(tenant, actor=actor(request), note=note)
        if changed:
            record(request, tenant, f"Paused the sync{f': {note}' if note else ''}")
        return self.paused(tenant, changed)

    @extend_schema(
        summary="Resume the tenant's sync",
        description="The events held while paused are queued again in the order received (`queued`). "
        "Resuming a running tenant changes nothing (`changed` false). Needs tenants.pause_tenant.",
        request=None,
        responses={200: serializers.PauseResultSerializer},
        examples=[examples.RESUMED],
    )
    @action(detail=True, methods=["post"], permission_classes=needs(CanPause))
    def resume(self, request, *args, **kwargs):
        tenant = self.get_object()
        queued = pausing.resume(tenant, actor=actor(request))
        if queued is not None:
            record(request, tenant, f"Resumed the sync ({queued} held event(s) queued)")
        return self.paused(tenant, queued is not None, queued)


@extend_schema_view(
    list=extend_schema(summary="Events, newest first", examples=[examples.EVENT_PAGE]),
    retrieve=extend_schema(
        summary="One event with its attempts",
        description="Payload, fetched record and the attempts' request, response and overwritten values are "
        "decrypted only for callers holding audit.view_sensitive_data (else null); attempts are listed "
        "for callers holding audit.view_attempt (else null).",
        examples=[examples.EVENT_DETAIL, examples.EVENT_DETAIL_MASKED],
    ),
)
class EventViewSet(ApiSettings, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Events received (FreshBooks and Jira deliveries, and reconcile finds), their outcome and attempts."""

    queryset = Event.objects.select_related("tenant", "assigned_to").order_by("-received_at", "-id")
    filterset_class = EventFilter
    lookup_value_regex = "[0-9]{1,18}"

    def sensitive(self):
        return self.request.user.has_perm(SENSITIVE)

    def get_queryset(self):
        events = super().get_queryset()
        if self.action != "retrieve" or not self.sensitive():
            events = events.defer(*SECRET_FIELDS)  # never decrypted for a caller who may not see them
        if self.action == "retrieve":
            attempts = Attempt.objects.order_by("created_at", "id")
            if not self.sensitive():
                attempts = attempts.defer(*ATTEMPT_BODIES)
            events = events.prefetch_related(Prefetch("attempt_set", queryset=attempts))
        return events

    def get_serializer_class(self):
        return serializers.EventDetailSerializer if self.action == "retrieve" else serializers.EventSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        user = self.request.user
        context.update(
            sensitive=bool(user and user.has_perm(SENSITIVE)),
            attempts=bool(user and user.has_perm("audit.view_attempt")),
        )
        return context

    def replayed(self, request, ids, dry_run):
        found = list(Event.objects.filter(pk__in=ids).defer(*SECRET_FIELDS).order_by("received_at", "id"))
        who = actor(request)
        result = replay(found, actor=who, dry_run=dry_run)
        if not dry_run:
            for event in result.queued:
                record(request, event, f"Replay requested by {who}")
        seen = {event.pk for event in found}
        return Response(
            {
                "dry_run": dry_run,
                "queued": [event.pk for event in result.queued],
                "refused": [{"id": event.pk, "reason": reason} for event, reason in result.refused],
                "not_found": [pk for pk in dict.fromkeys(ids) if pk not in seen],
            }
        )

    @extend_schema(
        summary="Replay one event",
        description="Queue the event for processing again (the ledger makes it safe: what an earlier attempt "
        "wrote is adopted, not written twice). `dry_run` only says whether it would be. Needs "
        "audit.replay_event. Who asked is kept on the event and on the attempts the replay makes.",
        request=serializers.ReplaySerializer,
        responses={200: serializers.ReplayResultSerializer},
        examples=[examples.REPLAY_REQUEST, examples.REPLAY_RESULT],
    )
    @action(detail=True, methods=["post"], permission_classes=needs(CanReplay))
    def replay(self, request, *args, **kwargs):
        event = self.get_object()
        return self.replayed(request, [event.pk], validated(serializers.ReplaySerializer, request)["dry_run"])

    @extend_schema(
        summary="Replay several events",
        operation_id="events_replay_many",
        description="As “Replay one event”, for up to 500 ids (oldest first). Unknown ids are listed in "
        "`not_found`.",
        request=serializers.BulkReplaySerializer,
        responses={200: serializers.ReplayResultSerializer},
        examples=[examples.BULK_REPLAY_REQUEST, examples.REPLAY_RESULT],
    )
    @action(detail=False, methods=["post"], url_path="replay", permission_classes=needs(CanReplay))
    def replay_many(self, request, *args, **kwargs):
        options = validated(serializers.BulkReplaySerializer, request)
        return self.replayed(request, options["ids"], options["dry_run"])

    @extend_schema(
        summary="Roll back one event (dry run first)",
        description="Undo in Jira what the event's processing did: delete what it created, put back what it "
        "changed. With `dry_run` true (the default) nothing is done: the answer (200) lists the `plan` and why "
        "it would be `refused`. With `dry_run` false it is checked and queued for the worker: 202, with the "
        "event's `url` (also in `Location`) to poll — its `status` becomes `rolled_back`, or its "
        "`status_detail` says why not (Jira failed, or was changed after the request: nothing overwritten). "
        "When the issue or worklog was changed in Jira since the connector's write, nothing is queued and the "
        "answer is 409 with the `differences` (their values only for callers holding "
        "audit.view_sensitive_data): confirm with `overwrite` true. Needs audit.rollback_event.",
        request=serializers.RollbackSerializer,
        responses={
            200: serializers.RollbackResultSerializer,
            202: serializers.RollbackQueuedSerializer,
            409: OpenApiResponse(
                serializers.RollbackProblemSerializer, description="Refused or conflicting."
            ),
            502: OpenApiResponse(
                serializers.RollbackProblemSerializer,
                description="Jira could not be asked whether it was changed since; nothing was queued.",
            ),
        },
        examples=[
            examples.ROLLBACK_DRY_RUN,
            examples.ROLLBACK_CONFIRM,
            examples.ROLLBACK_PLAN,
            examples.ROLLBACK_QUEUED,
            examples.ROLLBACK_CONFLICT,
        ],
    )
    @action(detail=True, methods=["post"], permission_classes=needs(CanRollback))
    def rollback(self, request, *args, **kwargs):
        event = self.get_object()
        options = validated(serializers.RollbackSerializer, request)
        answer = {"event": event.pk, "dry_run": options["dry_run"], "plan": plan(event), "done": []}
        if options["dry_run"]:
            return Response({**answer, "refused": refusal(event), "status": event.status})
        who = actor(request)
        try:
            queue_rollback(event, actor=who, overwrite=options["overwrite"])
        except RollbackConflict as exc:
            found = serializers.differences(exc, self.sensitive())
            return Response({"detail": str(exc), "code": "conflict", "differences": found}, status=409)
        except RollbackRefused as exc:
            return Response({"detail": f"Not rolled back: {exc}.", "code": "refused"}, status=409)
        except RollbackFailed as exc:
            return Response({"detail": f"Not rolled back: {exc}.", "code": "vendor_failed"}, status=502)
        record(request, event, f"Rollback requested by {who}")
        url = request.build_absolute_uri(reverse("event-detail", args=[event.pk]))
        queued = {
            "event": event.pk,
            "plan": answer["plan"],
            "overwrite": options["overwrite"],
            "status": event.status,
            "status_detail": event.status_detail,
            "url": url,
        }
        return Response(queued, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


@extend_schema(summary="Who the caller is and what they may do", examples=[examples.ME])
class MeView(ApiSettings, APIView):
    """The caller: username, groups, the actions their permissions allow, and the token used."""

    permission_classes = STAFF
    serializer_class = serializers.MeSerializer
    MAY = {
        "view_tenants": ("tenants.view_tenant",),
        "view_events": ("audit.view_event",),
        "view_sensitive_data": ("audit.view_event", SENSITIVE),
        "replay": CanReplay.perms,
        "rollback": CanRollback.perms,
        "reconcile": CanReconcile.perms,
        "pause": CanPause.perms,
    }

    def get(self, request):
        user, token = request.user, request.auth
        return Response(
            {
                "username": user.get_username(),
                "groups": sorted(user.groups.values_list("name", flat=True)),
                "may": {name: user.has_perms(perms) for name, perms in self.MAY.items()},
                "token": None
                if token is None or not hasattr(token, "prefix")
                else {
                    "name": token.name,
                    "prefix": token.prefix,
                    "created_at": token.created_at,
                    "expires_at": token.expires_at,
                },
            }
        )
