# streamsieve: the proxy on :8080; metrics, probes and reload on the admin port :9090.
#   docker build -t streamsieve .
#   docker run -p 8080:8080 -v $PWD/my.yaml:/etc/streamsieve/config.yaml:ro streamsieve
# Without a mounted config it runs config/openai.example.yaml (clients send their own keys).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY filters ./filters
COPY config ./config
# Installed as a package (the wheel carries config/ as pipeline/_config); the sources go.
RUN pip install . \
    && install -D -m 0644 config/openai.example.yaml /etc/streamsieve/config.yaml \
    && rm -rf /build

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin streamsieve
USER 10001
WORKDIR /tmp

EXPOSE 8080 9090
# Liveness only: /readyz also checks upstreams, which must not get a container restarted.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=2)"]

# SIGTERM drains: streams get --grace-s to finish (give the runtime's stop timeout more).
STOPSIGNAL SIGTERM
ENTRYPOINT ["streamsieve"]
CMD ["--log-format", "json", "serve", "--config", "/etc/streamsieve/config.yaml", \
     "--host", "0.0.0.0", "--admin-host", "0.0.0.0", "--grace-s", "20"]
