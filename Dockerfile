# fieldsync API image: build wheels in one stage, run as a non-root user in the next.
# Configure with FIELDSYNC_* environment variables (see README); FIELDSYNC_SECRET_KEY and
# FIELDSYNC_PII_KEY are required when FIELDSYNC_ENVIRONMENT=production.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FIELDSYNC_HOST=0.0.0.0 \
    FIELDSYNC_PORT=8000 \
    FIELDSYNC_DATA_DIR=/var/lib/fieldsync \
    FIELDSYNC_ENVIRONMENT=production \
    FIELDSYNC_ALEMBIC_INI=/app/alembic.ini
# pg_dump and pg_restore for `fieldsync backup` / `restore` on PostgreSQL (Debian 12: version 15).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system fieldsync \
    && useradd --system --gid fieldsync --home-dir /app --shell /usr/sbin/nologin fieldsync \
    && mkdir -p /var/lib/fieldsync \
    && chown fieldsync:fieldsync /var/lib/fieldsync
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
# Migrations are run by the entrypoint before the server starts (a deploy step, not the app's).
COPY alembic.ini ./
COPY migrations ./migrations
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER fieldsync
VOLUME ["/var/lib/fieldsync"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"FIELDSYNC_PORT\"]}/healthz', timeout=2)"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["fieldsync", "serve"]
