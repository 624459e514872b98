from django.urls import path

from .views import conflicts, erp

app_name = "erp"

urlpatterns = [
    path("links/<int:pk>/sync-now/", erp.SyncNowView.as_view(), name="sync-now"),
    path("runs/<int:pk>/", erp.RunStatusView.as_view(), name="run"),
    path("links/<int:pk>/disconnect/", erp.DisconnectView.as_view(), name="disconnect"),
    path("links/<int:pk>/relink/", erp.RelinkView.as_view(), name="relink"),
    path("links/<int:pk>/resolve-conflict/", conflicts.ResolveConflictView.as_view(), name="resolve-conflict"),
    path("connect/<int:connection_pk>/<int:record_pk>/", erp.ConnectView.as_view(), name="connect"),
    path("create/<int:connection_pk>/<int:record_pk>/", erp.CreateView.as_view(), name="create"),
]
