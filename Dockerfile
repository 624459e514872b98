FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY erpsync_admin erpsync_admin
COPY connectors connectors
COPY connections connections
COPY crm crm
COPY templates templates
COPY static static
COPY locale locale
COPY manage.py Procfile ./

RUN pip install . \
 && pybabel compile --domain django --directory locale \
 && DEBUG=1 python manage.py collectstatic --no-input -v 0 \
 && useradd --system --home /app erpsync && chown -R erpsync /app
USER erpsync

EXPOSE 8000
CMD ["gunicorn", "erpsync_admin.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]
