# confscale: exporter, planner and simulator in one image; the command picks the program
# (docker-compose.yml). Built in two stages so the runtime image has no build tools.
FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
COPY planner/ planner/
COPY simulator/ simulator/
COPY confscale/ confscale/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
# MALLOC_ARENA_MAX=2: the exporter's poll threads otherwise spread glibc arenas; the soak
# bench measured ~45 MB less RSS at 1,000 nodes (docs/benchmarks.md, Scale and faults)
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/confscale --create-home \
        --shell /usr/sbin/nologin confscale \
    && mkdir -p /var/lib/confscale/demo /etc/confscale \
    && chown confscale:confscale /var/lib/confscale/demo
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels confscale \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/confscale
EXPOSE 9688 9689 8090
CMD ["confscale-exporter", "--config.file=/etc/confscale/exporter.yml", "--web.listen-address=0.0.0.0:9688"]
