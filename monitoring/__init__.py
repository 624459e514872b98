"""What ops watch: liveness and readiness (``/health/``, ``/health/ready/``) and Prometheus metrics (``/metrics``)."""
