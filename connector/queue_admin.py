"""django-q2's task admin (Success, Failure) with its one action declaring a permission.

"Resubmit selected tasks to queue" runs tasks again (processing, confirmations, refreshes); django-q2
declares no permission for it, so any staff user who may view tasks could run it. Here it needs the change
permission on the tasks (the administrator group has it).
"""

from django.contrib import admin
from django_q import admin as q_admin
from django_q.models import Failure, Success


@admin.action(description="Resubmit selected tasks to queue", permissions=["change"])
def resubmit_task(modeladmin, request, queryset):
    q_admin.resubmit_task(modeladmin, request, queryset)


class SuccessAdmin(q_admin.TaskAdmin):
    actions = [resubmit_task]


class FailureAdmin(q_admin.FailAdmin):
    actions = [resubmit_task]


for model, model_admin in ((Success, SuccessAdmin), (Failure, FailureAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
