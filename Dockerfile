# The base: the official slim Python, or where no registry answers the same Python from Debian's
# packages, built by e2e/offline-base.sh under this very name. (No `# syntax=` line: BuildKit's
# built-in frontend has RUN --mount, and a machine without a registry could not pull another.)
ARG PYTHON_IMAGE=python:3.11-slim

# Build: the operator and its dependencies installed into a virtualenv; the dependencies first,
# in a layer of their own that only a change to pyproject.toml rebuilds.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml ./
# Behind a TLS-intercepting proxy, pip trusts the CA bundle passed as the build secret "ca"
# (`--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt`): mounted for the step only, never
# stored in a layer.
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/resilient-operator \
 && /opt/resilient-operator/bin/pip install --upgrade pip==25.3 \
 && python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\\n')" > requirements.txt \
 && /opt/resilient-operator/bin/pip install --requirement requirements.txt
COPY README.md ./
COPY operator ./operator
# pip and setuptools go: the app needs neither. So does kubernetes/aio, the client's asyncio twin
# (68 MB, a third of the image) that nothing here imports (kopf talks to the API with aiohttp).
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && /opt/resilient-operator/bin/pip install --no-deps . \
 && /opt/resilient-operator/bin/pip uninstall --yes --quiet setuptools pip \
 && rm -rf /opt/resilient-operator/lib/python3*/site-packages/kubernetes/aio

# Run: the same base with only the virtualenv copied in: no wheels, no pip cache, no sources.
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/resilient-operator/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /opt/resilient-operator /opt/resilient-operator
# a numeric non-root user, so runAsNonRoot can be verified by the kubelet
USER 65532:65532
# metrics, and the liveness endpoint
EXPOSE 8080 8081
# the root filesystem can be read-only: nothing is written but (perhaps) /tmp, an emptyDir
WORKDIR /tmp
ENTRYPOINT ["resilient-operator", "--liveness", "http://0.0.0.0:8081/healthz"]
