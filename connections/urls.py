from django.urls import path
from django.views.generic import RedirectView

from .views import (
    conflicts,
    connections,
    connectors,
    imports,
    mapping,
    plans,
    runs,
    sync_filters,
    sync_log,
    sync_tab,
)

app_name = "connections"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="connections:sync"), name="quote-sync"),
    path("sync/", sync_tab.SyncTab.as_view(), name="sync"),
    path("workers/", sync_tab.WorkersTab.as_view(), name="workers"),
    path("connectors/new/", connectors.ConnectorFormView.as_view(), name="connector-add"),
    path("connectors/<int:pk>/edit/", connectors.ConnectorFormView.as_view(), name="connector-edit"),
    path("connectors/<int:pk>/check/", connectors.ConnectorCheckView.as_view(), name="connector-check"),
    path("connectors/<int:pk>/delete/", connectors.ConnectorDeleteView.as_view(), name="connector-delete"),
    path("connections/new/", connections.ConnectionFormView.as_view(), name="connection-add"),
    path("connections/config-fields/", connections.ConfigFieldsPartial.as_view(), name="connection-config-fields"),
    path("connections/test/", connections.ConnectionTestView.as_view(), name="connection-test-new"),
    path("connections/config-list/", connections.ConfigListPartial.as_view(), name="connection-config-list-new"),
    path("connections/<int:pk>/config-list/", connections.ConfigListPartial.as_view(), name="connection-config-list"),
    path("connections/<int:pk>/", connections.ConnectionDetail.as_view(), name="connection-detail"),
    path("connections/<int:pk>/edit/", connections.ConnectionFormView.as_view(), name="connection-edit"),
    path("connections/<int:pk>/test-values/", connections.ConnectionTestView.as_view(), name="connection-test"),
    path("connections/<int:pk>/test/", connections.ConnectionTestSavedView.as_view(), name="connection-test-saved"),
    path(
        "connections/<int:pk>/actor-types/",
        connections.ConnectionActorTypesView.as_view(),
        name="connection-actor-types",
    ),
    path("connections/<int:pk>/refresh/", connections.ConnectionRefreshView.as_view(), name="connection-refresh"),
    path("connections/<int:pk>/active/", connections.ConnectionActiveView.as_view(), name="connection-active"),
    path(
        "connections/<int:pk>/sync-filter/<str:actor_type>/",
        sync_filters.SyncFilterView.as_view(),
        name="sync-filter",
    ),
    path(
        "connections/<int:pk>/automatic-sync/",
        connections.ConnectionAutomaticSyncView.as_view(),
        name="connection-automatic-sync",
    ),
    path("connections/<int:pk>/delete/", connections.ConnectionDeleteView.as_view(), name="connection-delete"),
    path(
        "connections/deleted/<int:pk>/restore/", connections.ConnectionRestoreView.as_view(), name="connection-restore"
    ),
    path("connections/<int:pk>/mapping/", mapping.FieldMappingView.as_view(), name="mapping-start"),
    path("connections/<int:pk>/mapping/<str:actor_type>/", mapping.FieldMappingView.as_view(), name="mapping"),
    path(
        "connections/<int:pk>/mapping/<str:actor_type>/undecided/",
        mapping.UndecidedDirectionsView.as_view(),
        name="mapping-undecided",
    ),
    path(
        "connections/<int:pk>/mapping/<str:actor_type>/rank/",
        mapping.FieldRankView.as_view(),
        name="mapping-rank",
    ),
    path(
        "connections/<int:pk>/mapping/<str:actor_type>/lists/<str:key>/",
        mapping.ListMappingView.as_view(),
        name="mapping-list",
    ),
    path(
        "connections/<int:pk>/mapping/<str:actor_type>/defaults/",
        mapping.DefaultValuesView.as_view(),
        name="mapping-defaults",
    ),
    path("connections/<int:pk>/run/", connections.ConnectionBulkRunView.as_view(), name="connection-bulk-run"),
    path(
        "connections/<int:pk>/reconcile/",
        connections.ConnectionReconcileView.as_view(),
        name="connection-reconcile",
    ),
    path("connections/<int:pk>/plan/", plans.ConnectionPlanView.as_view(), name="connection-plan"),
    path("plans/<int:pk>/", plans.PlanDetailView.as_view(), name="plan"),
    path("plans/<int:pk>/progress/", plans.PlanProgressView.as_view(), name="plan-progress"),
    path("plans/<int:pk>/action/", plans.PlanActionView.as_view(), name="plan-action"),
    path("settings/", sync_tab.SyncSettingsTab.as_view(), name="sync-settings"),
    path("connections/<int:pk>/runs/<int:run_pk>/", runs.RunDetailView.as_view(), name="run-detail"),
    path("connections/<int:pk>/runs/<int:run_pk>/undo/", runs.RunUndoView.as_view(), name="run-undo"),
    path("connections/<int:pk>/log/", sync_log.SyncLogView.as_view(), name="sync-log"),
    path("connections/<int:pk>/log/export/", sync_log.SyncLogExportView.as_view(), name="sync-log-export"),
    path("connections/<int:pk>/failed/", sync_log.FailedRecordsView.as_view(), name="failed-records"),
    path("connections/<int:pk>/held-conflicts/", conflicts.HeldConflictsView.as_view(), name="held-conflicts"),
    path(
        "connections/<int:pk>/failed/export/", sync_log.FailedRecordsExportView.as_view(), name="failed-records-export"
    ),
    path("import/", imports.ImportStartView.as_view(), name="import"),
    path("import/<int:pk>/", imports.ImportDetailView.as_view(), name="import-detail"),
    path("import/<int:pk>/rows/<int:row_pk>/", imports.ImportRowView.as_view(), name="import-row"),
    path("import/<int:pk>/counts/", imports.ImportCountsView.as_view(), name="import-counts"),
    path("import/<int:pk>/action/", imports.ImportActionView.as_view(), name="import-action"),
    path("import/<int:pk>/progress/", imports.ImportProgressView.as_view(), name="import-progress"),
]
