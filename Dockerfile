# One image for every deployable of the platform: `ler serve <service>`, `ler process <processor>`,
# `ler replay wallet`. Build from the repository root: docker build -t ler-platform:0.1.0 .

# Builder: installs the project and its pinned dependencies into a virtualenv.
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ler ./ler
COPY services ./services
# A plain (not editable) install; pip byte-compiles, so nothing is written at run time.
RUN pip install --no-cache-dir .

# Runtime: the virtualenv and the Avro schemas on a slim Python, no compilers, no pip cache.
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LER_SCHEMAS_DIR=/app/schemas/avro \
    LER_DATA_DIR=/app/var
RUN groupadd --system --gid 10001 ler \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin ler
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY schemas ./schemas
# The root filesystem is mounted read-only in Kubernetes; var/ and /tmp are the writable places
# (emptyDir volumes there).
RUN mkdir -p /app/var && chown 10001:10001 /app/var
USER 10001
EXPOSE 8001 8002 8003 8004 8080
ENTRYPOINT ["ler"]
CMD ["--help"]
