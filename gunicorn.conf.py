"""gunicorn's settings for erpsync, read from the working directory by every `gunicorn` the project starts
(the image, docker-compose, the production smoke). Command-line flags still override them."""

# A CSV export of a large sync log streams for about a minute per million rows; a sync worker that sends for
# longer than the timeout would be killed mid-download. Requests that hang still end: connectors are bounded
# by their own timeouts (ERPSYNC_CONNECTOR_TIMEOUT, ERPSYNC_ERP_TAB_TIMEOUT).
timeout = 300
# Let a stopping worker finish the request it is serving, within the same bound as the slowest page.
graceful_timeout = 30
