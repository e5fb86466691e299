# The `vizita` command in a container: the worker, the ingest endpoint and the simulator
# of docker-compose.yml. Kafka, ClickHouse and Grafana run from their own images.
FROM python:3.11.16-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The pinned dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY vizita ./vizita
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks
COPY dashboards ./dashboards
COPY config ./config
# Editable, so the code runs from /app as in a checkout: vizita/contract/settings.py finds
# config/ (vizita.yaml, targets.yaml, submitters.yaml) beside the packages.
RUN pip install --no-deps -e .

# Never root at run time; local state (Faust's data directory) in its own place.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app vizita \
    && mkdir -p /var/lib/vizita \
    && chown vizita /var/lib/vizita
USER vizita
ENV VIZITA_DATA_DIR=/var/lib/vizita

ENTRYPOINT ["vizita"]
CMD ["--help"]
