"""Delete old sync log rows now, as the hourly beat task does, in the same short batches."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from connections import retention
from connections.models import SyncLogEntry


class Command(BaseCommand):
    help = (
        "Delete sync log rows older than ERPSYNC_SYNC_LOG_RETENTION_DAYS (or --days), oldest first, in batches "
        "of --batch-size rows, each its own short transaction. Runs until none is left unless --budget is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, help="Keep this many days instead of the setting (0: keep for ever).")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.BATCH_SIZE,
            help=f"Rows deleted per transaction (default {retention.BATCH_SIZE}).",
        )
        parser.add_argument(
            "--budget",
            type=float,
            metavar="SECONDS",
            help="Start no new batch after this many seconds; the rest is left for the next run.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the rows that would be deleted; delete none.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = settings.ERPSYNC_SYNC_LOG_RETENTION_DAYS if options["days"] is None else options["days"]
        if days < 0:
            raise CommandError(f"--days must be 0 (keep for ever) or a number of days, not {days}.")
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, not {options['batch_size']}.")
        if options["budget"] is not None and options["budget"] < 0:
            raise CommandError(f"--budget must be a number of seconds of 0 or more, not {options['budget']:g}.")
        cutoff = retention.retention_cutoff(days)
        if cutoff is None:
            self.stdout.write("The sync log is kept for ever (retention 0 days): nothing to delete.")
            return
        if options["dry_run"]:
            count = SyncLogEntry.objects.filter(at__lt=cutoff).count()
            self.stdout.write(f"{count} sync log rows are older than {days} days (before {cutoff:%Y-%m-%d %H:%M %Z}).")
            return

        def progress(deleted: int) -> None:
            if options["verbosity"] >= 2:
                self.stdout.write(f"  {deleted} deleted")

        result = retention.prune_sync_log(
            days=days, batch_size=options["batch_size"], budget_seconds=options["budget"], progress=progress
        )
        self.stdout.write(
            f"Deleted {result.deleted} sync log rows older than {days} days (before {cutoff:%Y-%m-%d %H:%M %Z}) "
            f"in {result.batches} batches."
        )
        if not result.finished:
            self.stdout.write(self.style.WARNING("The time budget ran out; older rows are left for the next run."))
