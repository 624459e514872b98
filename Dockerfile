FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The locked production set (`make lock`), each file checked against its hash. A layer of its own: code changes
# do not reinstall it.
COPY requirements/production.txt requirements/production.txt
RUN pip install --require-hashes -r requirements/production.txt

COPY pyproject.toml README.md ./
COPY erpsync_admin erpsync_admin
COPY connectors connectors
COPY connections connections
COPY crm crm
COPY core core
COPY alerts alerts
COPY monitoring monitoring
COPY api api
COPY templates templates
COPY static static
COPY locale locale
COPY manage.py Procfile gunicorn.conf.py ./

# The project without dependencies (the lock has them; pip check fails the build if it lacks one), built with the
# locked setuptools. Static files are collected with DEBUG off, as they are served: hashed names and the manifest
# WhiteNoise reads. The keys given to that one command are throwaway ones: nothing is signed or encrypted there.
RUN pip install --no-deps --no-build-isolation . \
 && pip check \
 && pybabel compile --domain django --directory locale \
 && DEBUG=0 SECRET_KEY=collectstatic-only-not-a-secret \
    ERPSYNC_FERNET_KEYS="$(python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')" \
    python manage.py collectstatic --no-input -v 0 \
 && useradd --system --home /app erpsync && chown -R erpsync /app
USER erpsync

EXPOSE 8000
CMD ["gunicorn", "erpsync_admin.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]
