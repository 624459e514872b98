from django.urls import path

from . import views_erp

app_name = "erp"

urlpatterns = [
    path("links/<int:pk>/sync-now/", views_erp.sync_now, name="sync-now"),
    path("runs/<int:pk>/", views_erp.run_status, name="run"),
    path("links/<int:pk>/disconnect/", views_erp.disconnect, name="disconnect"),
    path("connect/<int:connection_pk>/<int:record_pk>/", views_erp.connect, name="connect"),
]
urlpatterns += [path("create/<int:connection_pk>/<int:record_pk>/", views_erp.create, name="create")]
