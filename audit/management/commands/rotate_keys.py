from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.fields import encrypted_fields
from config.arguments import BATCH_MAX, batch_size


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field with the first key of FERNET_KEYS. "
        "Rotation: put the new key first and keep the old ones after it, run this command, "
        "then remove the old keys. Safe to re-run; works in batches and prints progress."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=batch_size,
            default=500,
            help=f"Rows per transaction (1 to {BATCH_MAX}, default 500).",
        )

    def handle(self, *args, batch_size, **options):
        unreadable = []
        for model, names in encrypted_fields():
            label = model._meta.label
            pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
            done = 0
            for start in range(0, len(pks), batch_size):
                batch = pks[start : start + batch_size]
                with transaction.atomic():
                    for pk in batch:
                        try:
                            row = model._default_manager.only(*names).get(pk=pk)
                        except InvalidToken:
                            unreadable.append(f"{label} #{pk}")
                            continue
                        # update() sends each value through get_db_prep_save: encrypted with the first key.
                        model._default_manager.filter(pk=pk).update(**{n: getattr(row, n) for n in names})
                        done += 1
                self.stdout.write(f"{label}: {done}/{len(pks)} rows re-encrypted")
            if not pks:
                self.stdout.write(f"{label}: nothing to re-encrypt")
        if unreadable:
            raise CommandError(
                "These rows could not be decrypted with any key of FERNET_KEYS (add the old key back and re-run): "
                + ", ".join(unreadable)
            )
        self.stdout.write(self.style.SUCCESS("All encrypted fields now use the first key of FERNET_KEYS."))
