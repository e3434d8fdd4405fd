# nasbox: Samba shares, rsync backups, par2 scrubbing and restic offsite backups in one container.
# Build: docker build -t nasbox:latest .   (offline: run image/fetch-wheels first)

# Stage 1: the Python environment, built apart so that the wheelhouse stays out of the image.
FROM debian:trixie-slim AS venv
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY image/wheels/ /tmp/wheels/
COPY pyproject.toml /tmp/wheels/
RUN python3 -m venv /opt/nasbox \
 && /opt/nasbox/bin/pip install --no-cache-dir --disable-pip-version-check \
      $(ls /tmp/wheels/*.whl >/dev/null 2>&1 && echo --no-index) --find-links /tmp/wheels \
      $(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("/tmp/wheels/pyproject.toml","rb"))["project"]["dependencies"]))')
COPY README.md pyproject.toml /tmp/src/
COPY nasbox /tmp/src/nasbox
RUN /opt/nasbox/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps \
      $(ls /tmp/wheels/*.whl >/dev/null 2>&1 && echo --no-index) --find-links /tmp/wheels /tmp/src \
 && /opt/nasbox/bin/pip uninstall -y --disable-pip-version-check pip \
 && find /opt/nasbox -name __pycache__ -prune -exec rm -rf {} +

# Stage 2: the appliance.
FROM debian:trixie-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      samba rsync cifs-utils python3 tini tzdata ca-certificates attr iptables btrfs-progs \
      wsdd2 avahi-daemon \
      restic openssh-client rclone \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /usr/share/doc/* /usr/share/man/*
COPY --from=venv /opt/nasbox /opt/nasbox
COPY config/ /usr/share/nasbox/config/
COPY services/ /usr/share/nasbox/services/
COPY entrypoint /usr/local/bin/entrypoint
ENV NASBOX_RESOURCES=/usr/share/nasbox
RUN ln -s /opt/nasbox/bin/nasbox /opt/nasbox/bin/scrub /usr/local/bin/ \
 && ln -s "$(/opt/nasbox/bin/python -c 'import par2, pathlib; print(pathlib.Path(par2.__path__[0], "binaries", "par2"))')" /usr/local/bin/par2 \
 && par2 --version >/dev/null \
 && mkdir -p /config

VOLUME /config
EXPOSE 445 8080
# tini is PID 1: it reaps orphans (mount helpers, smbd children) and forwards SIGTERM to
# supervisord, which stops smbd cleanly; see README "Processes".
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["nasbox", "health"]
# A nasbox verb runs nasbox (`docker run IMAGE config check`), anything else runs as given.
ENTRYPOINT ["/usr/bin/tini", "--", "entrypoint"]
CMD ["run"]
