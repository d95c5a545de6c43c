# syntax=docker/dockerfile:1
# Build: a wheel of the operator and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --upgrade pip==25.3 \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

# Run: a slim Python with the wheels installed, no build tools, no caches, non-root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels resilient-operator==0.1.0 \
 && rm -rf /wheels
# a numeric non-root user, so runAsNonRoot can be verified by the kubelet
USER 65532:65532
# metrics, and the liveness endpoint
EXPOSE 8080 8081
# the root filesystem can be read-only: only /tmp (an emptyDir) is written
WORKDIR /tmp
ENTRYPOINT ["resilient-operator", "--liveness", "http://0.0.0.0:8081/healthz"]
