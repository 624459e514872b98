from django.urls import path
from django.views.generic import RedirectView

from . import views, views_import, views_log, views_mapping

app_name = "connections"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="connections:sync"), name="quote-sync"),
    path("sync/", views.SyncTab.as_view(), name="sync"),
    path("workers/", views.WorkersTab.as_view(), name="workers"),
    path("connectors/new/", views.ConnectorFormView.as_view(), name="connector-add"),
    path("connectors/<int:pk>/edit/", views.ConnectorFormView.as_view(), name="connector-edit"),
    path("connectors/<int:pk>/check/", views.ConnectorCheckView.as_view(), name="connector-check"),
    path("connectors/<int:pk>/delete/", views.ConnectorDeleteView.as_view(), name="connector-delete"),
    path("connections/new/", views.ConnectionFormView.as_view(), name="connection-add"),
    path("connections/config-fields/", views.ConfigFieldsPartial.as_view(), name="connection-config-fields"),
    path("connections/test/", views.ConnectionTestView.as_view(), name="connection-test-new"),
    path("connections/<int:pk>/", views.ConnectionDetail.as_view(), name="connection-detail"),
    path("connections/<int:pk>/edit/", views.ConnectionFormView.as_view(), name="connection-edit"),
    path("connections/<int:pk>/test-values/", views.ConnectionTestView.as_view(), name="connection-test"),
    path("connections/<int:pk>/test/", views.ConnectionTestSavedView.as_view(), name="connection-test-saved"),
    path("connections/<int:pk>/actor-types/", views.ConnectionActorTypesView.as_view(), name="connection-actor-types"),
    path("connections/<int:pk>/refresh/", views.ConnectionRefreshView.as_view(), name="connection-refresh"),
    path("connections/<int:pk>/active/", views.ConnectionActiveView.as_view(), name="connection-active"),
    path("connections/<int:pk>/delete/", views.ConnectionDeleteView.as_view(), name="connection-delete"),
    path("connections/<int:pk>/mapping/", views_mapping.FieldMappingView.as_view(), name="mapping-start"),
    path("connections/<int:pk>/mapping/<str:actor_type>/", views_mapping.FieldMappingView.as_view(), name="mapping"),
    path(
        "connections/<int:pk>/mapping/<str:actor_type>/rank/",
        views_mapping.FieldRankView.as_view(),
        name="mapping-rank",
    ),
    path(
        "connections/<int:pk>/mapping/<str:actor_type>/lists/<str:key>/",
        views_mapping.ListMappingView.as_view(),
        name="mapping-list",
    ),
    path(
        "connections/<int:pk>/mapping/<str:actor_type>/defaults/",
        views_mapping.DefaultValuesView.as_view(),
        name="mapping-defaults",
    ),
    path("connections/<int:pk>/run/", views.ConnectionBulkRunView.as_view(), name="connection-bulk-run"),
    path("settings/", views.SyncSettingsTab.as_view(), name="sync-settings"),
    path("connections/<int:pk>/log/", views_log.SyncLogView.as_view(), name="sync-log"),
    path("connections/<int:pk>/failed/", views_log.FailedRecordsView.as_view(), name="failed-records"),
    path("import/", views_import.ImportStartView.as_view(), name="import"),
    path("import/<int:pk>/", views_import.ImportDetailView.as_view(), name="import-detail"),
    path("import/<int:pk>/rows/<int:row_pk>/", views_import.ImportRowView.as_view(), name="import-row"),
    path("import/<int:pk>/counts/", views_import.ImportCountsView.as_view(), name="import-counts"),
    path("import/<int:pk>/action/", views_import.ImportActionView.as_view(), name="import-action"),
    path("import/<int:pk>/progress/", views_import.ImportProgressView.as_view(), name="import-progress"),
]
