# The service's image. The project itself is bind-mounted at /workspace at run time
# (compose.yaml), so the models the schema dump reads are always the working tree's.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

# Extra CA certificates (docker/certs/*.crt) for networks that intercept TLS. Public
# certificates only: nothing secret is baked into the image.
COPY docker/certs/ /usr/local/share/ca-certificates/extra/
COPY requirements-app.txt /tmp/requirements-app.txt
RUN set -eu; \
    bundle=""; \
    if ls /usr/local/share/ca-certificates/extra/*.crt >/dev/null 2>&1; then \
        if command -v update-ca-certificates >/dev/null; then update-ca-certificates >/dev/null; bundle=/etc/ssl/certs/ca-certificates.crt; \
        else bundle=$(ls /usr/local/share/ca-certificates/extra/*.crt | head -n1); fi; \
    fi; \
    python3 -m venv /opt/venv; \
    PIP_CERT="$bundle" /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -q -r /tmp/requirements-app.txt; \
    rm /tmp/requirements-app.txt
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /workspace
CMD ["sleep", "infinity"]
