# syntax=docker/dockerfile:1
# One image for every component of dora-cloudevents:
#   embedded:     docker run -p 8080:8080 -v dora:/data IMAGE                    (serve, SQLite)
#   distributed:  IMAGE serve --components ingest | router | projector | transform | api
#                 IMAGE route --once / project --once (CronJobs), IMAGE db upgrade (a Job)

ARG PYTHON_VERSION=3.11

# Build stage: a wheel of the project and a virtual environment with it and its
# dependencies (all binary wheels, so no compiler is needed).
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/dora
COPY pyproject.toml README.md ./
COPY src ./src
# Byte-compiled here: the runtime's root file system may be read-only (as the Helm chart
# sets it), where Python could not cache what it compiles at every start.
RUN /opt/dora/bin/pip install . \
    && /opt/dora/bin/pip uninstall --yes pip

# Runtime stage: the interpreter and the virtual environment, nothing else.
FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="dora-cloudevents" \
      org.opencontainers.image.description="CloudEvents in, CDEvents through, DORA metrics out" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 dora \
    && useradd --system --uid 10001 --gid dora --home-dir /data --no-create-home dora \
    && mkdir /data && chown dora:dora /data
COPY --from=build /opt/dora /opt/dora
ENV PATH=/opt/dora/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DORA_HOST=0.0.0.0 \
    DORA_PORT=8080 \
    DORA_DATABASE_URL=sqlite:////data/dora.db
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
# Liveness only: /readyz (the database answers) is for Kubernetes readiness probes.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DORA_PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["dora-ce"]
CMD ["serve"]
