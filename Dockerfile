# Storedesk production image: granian serves web (and, on port 8001, the webhook ingest `hooks`);
# the same image runs the Celery worker and beat (see docker-compose.yml). Dependencies come from uv.lock, exactly.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH

RUN groupadd --system --gid 10001 storedesk \
 && useradd --system --uid 10001 --gid storedesk --create-home --home-dir /home/storedesk storedesk

WORKDIR /app

# Dependencies first, so code changes reuse this layer.
RUN pip install uv==0.13.9
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-cache

COPY . .

# Static files are collected once, at build time, with hashed names (WhiteNoise serves them).
# The key and database here exist only for this step; nothing of them stays in the image.
# At run time the container refuses to start without SECRET_KEY (unless DEBUG=1).
ENV STATIC_MANIFEST=1 \
    STOREDESK_REQUIRE_SECRET=1
RUN SECRET_KEY=build-only-dummy-key-not-used-at-runtime DEBUG=0 STOREDESK_VAR_DIR=/tmp/build-var \
    python manage.py collectstatic --noinput \
 && rm -rf /tmp/build-var \
 && mkdir -p /app/var \
 && chown storedesk:storedesk /app/var

USER storedesk
EXPOSE 8000 8001

# granian (HTTP parsed in Rust) running helpdesk.wsgi: one process per core (GRANIAN_WORKERS,
# which granian reads) with 4 Python threads each, what `make bench` measured best on 2 cores
# (bench/README.md). It cost 0.5-0.7 ms less CPU per request than gunicorn's gthread loop.
ENV GRANIAN_WORKERS=2
CMD ["granian", "--interface", "wsgi", "helpdesk.wsgi:application", "--host", "0.0.0.0", "--port", "8000", "--blocking-threads", "4", "--respawn-failed-workers"]
