"""Import from ERP for scripted use: the same preview and import as the page, with a progress bar here."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.http import QueryDict
from tqdm import tqdm

from connections import importing, jobs, linking
from connections.choices import ImportAction, ImportOutcome, MatchKind, RunStatus
from connections.models import ErpConnection, ErpImport, SyncRun
from connectors.client import ConnectorError


class Command(BaseCommand):
    help = (
        "Import ERP actors into the CRM: every actor of a type (--all), chosen keys (--key), or those a search "
        "finds (--where). Prints the plan; imports unless --preview-only; undecided rows need --undecided."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connection", required=True, help="The ERP connection's name or id.")
        parser.add_argument("--actor-type", required=True, help="Customer, Supplier, Partner, Person or Project.")
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--all", action="store_true", help="Every actor of the type the ERP has.")
        what.add_argument("--key", action="append", default=[], help="An ERP key; repeat for more.")
        what.add_argument(
            "--where",
            action="append",
            nargs=3,
            metavar=("FIELD", "OPERATOR", "VALUE"),
            default=[],
            help="A search criterion, e.g. --where NAME contains bygg; repeat for more.",
        )
        parser.add_argument(
            "--undecided",
            choices=[ImportAction.CREATE, ImportAction.SKIP],
            help="What to do with rows that need a decision: create new records, or skip them.",
        )
        parser.add_argument("--preview-only", action="store_true", help="Make the plan, print it, import nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = self._connection(options["connection"])
        actor_type = options["actor_type"]
        language = settings.LANGUAGE_CODE
        keys, description = options["key"], ""
        if options["where"]:
            keys, description = self._search(connection, actor_type, options["where"], language)
        try:
            erp_import = importing.start_preview(
                connection,
                actor_type,
                keys=keys,
                everything=options["all"],
                description=description,
                language=language,
                send=False,
            )
        except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
            raise CommandError(str(refusal)) from None
        self._run(erp_import.preview_run, "Preview", None if options["all"] else len(keys))
        erp_import.refresh_from_db()
        summary = importing.summary(erp_import)
        kinds = summary["kinds"]
        self.stdout.write(" · ".join(f"{MatchKind(kind).label}: {n}" for kind, n in kinds.items()))
        url = erp_import.get_absolute_url()
        if options["preview_only"]:
            self.stdout.write(f"The plan is import #{erp_import.pk}; review it at {url}")
            return
        if summary["undecided"]:
            if not options["undecided"]:
                self.stdout.write(
                    self.style.WARNING(
                        f"{summary['undecided']} rows need a decision. Decide them at {url}, or run again with "
                        "--undecided create or --undecided skip."
                    )
                )
                return
            importing.decide_all(erp_import, options["undecided"])
        try:
            run = importing.start_import(erp_import, send=False)
        except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
            raise CommandError(str(refusal)) from None
        self._run(run, "Import", run.total)
        self._report(erp_import, run)

    def _connection(self, wanted: str) -> ErpConnection:
        found = ErpConnection.objects.filter(Q(name__iexact=wanted) | Q(pk=int(wanted) if wanted.isdigit() else 0))
        connection = found.select_related("connector").first()
        if connection is None:
            names = ", ".join(ErpConnection.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No ERP connection is called {wanted!r}. Connections: {names}.")
        return connection

    def _search(
        self, connection: ErpConnection, actor_type: str, where: list[list[str]], language: str
    ) -> tuple[list[str], str]:
        data = QueryDict(mutable=True)
        for field_key, operator, value in where:
            data[f"op-{field_key}"] = operator
            data.appendlist(f"v-{field_key}", value)
        rows, problem = linking.criteria(connection, actor_type, data, language)
        if problem:
            raise CommandError(problem.message)
        unknown = {f for f, _op, _v in where} - {row.field.key for row in rows}
        if unknown:
            searchable = ", ".join(row.field.key for row in rows)
            raise CommandError(f"Not a searchable field: {', '.join(sorted(unknown))}. Searchable: {searchable}.")
        restrictions = linking.restrictions_from(rows)
        errors = [f"{row.field.key}: {row.error}" for row in rows if row.error]
        if errors:
            raise CommandError("; ".join(errors))
        result = linking.search_erp(connection, actor_type, restrictions, language)
        if result.problem:
            raise CommandError(result.problem.message)
        if result.truncated:
            self.stdout.write(
                self.style.WARNING(f"The ERP found more than {len(result.rows)}; only those are planned.")
            )
        return [row.key for row in result.rows], " ".join(" ".join(criterion) for criterion in where)

    def _run(self, run: SyncRun | None, title: str, total: int | None) -> None:
        """Run the job here, as a worker would, with a progress bar on the terminal."""
        assert run is not None
        attempt = jobs.claim(run.pk)
        if not attempt:
            raise CommandError(f"{title} #{run.pk} was started elsewhere.")
        with tqdm(total=total or None, desc=title, unit=" actors", file=self.stderr, disable=None) as bar:

            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            try:
                with jobs.renewing(run.pk, attempt):  # the run's lease, as a worker holds it
                    counts = importing.perform(SyncRun.objects.get(pk=run.pk), progress, inline=True)
            except jobs.LeaseLost:
                raise CommandError(f"{title} #{run.pk} was taken over by a worker; it goes on there.") from None
            except (ConnectorError, jobs.SyncRefused) as error:
                jobs.finish(run.pk, RunStatus.FAILED, str(error), attempt)
                raise CommandError(f"{title} failed: {error}") from None
            except BaseException:
                jobs.finish(run.pk, RunStatus.FAILED, f"{title} stopped before it finished.", attempt)
                raise
        assert counts is not None  # imported here, inline
        jobs.finish_with(run.pk, counts, attempt)

    def _report(self, erp_import: ErpImport, run: SyncRun) -> None:
        outcomes = importing.summary(erp_import)["outcomes"]
        self.stdout.write(
            f"New: {outcomes['new']} · Updated: {outcomes['updated']} · Failed: {outcomes['failed']} · "
            f"Skipped: {outcomes['skipped']}"
        )
        failed = erp_import.rows.filter(outcome=ImportOutcome.FAILED)
        for row in failed[:20]:
            self.stderr.write(f"  {row.actor_type} {row.erp_key} ({row.name}): {row.error}")
        if outcomes["failed"]:
            raise CommandError(
                f"{outcomes['failed']} rows failed; retry them at {erp_import.get_absolute_url()} once fixed."
            )
