# The step image: `hera-flows step NAME` for every workflow step. Lean clients only (mlflow-skinny, not the
# MLflow server). Runs as uid 65532 with a read-only root filesystem; /tmp and /workspace are emptyDirs.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hera_flows ./hera_flows
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[step]'

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'hera-flows[step]' && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 65532:65532
WORKDIR /tmp
CMD ["hera-flows", "--help"]
