# Dockerfile - vmoduled in a container, and the two images its compose file
# (conf/docker-compose.yml) adds beside it. Every stage starts from Debian 12
# (debian:bookworm-slim) and installs Debian packages only.
#
#   target    image contents
#   build     compiles vmoduled and vmodulectl with the -dev packages
#   cloud     python3 + python3-paho-mqtt + scripts/vmodule-cloud, the Tencent
#             cloud side (docker run --rm vmodule-cloud serve --broker HOST:PORT)
#   mosquitto Debian's mosquitto, anonymous, on 1883 (for the compose file)
#   (last)    the default: vmoduled + vmodulectl, shared libraries only
#
#   docker build -t vmodule .
#   docker run --rm -p 127.0.0.1:5555-5557:5555-5557 vmodule
#   # on the host: a PTY for the firmware, bridged to the container's TCP port
#   socat pty,rawer,link=/tmp/ttyVM0 tcp:127.0.0.1:5555
#   docker build --target cloud -t vmodule-cloud .
#   docker compose -p vmodule -f conf/docker-compose.yml up --build
#
# Publish ports on 127.0.0.1 only (-p 127.0.0.1:PORT:PORT): the serial
# endpoints have no authentication. A PTY made inside a container cannot be
# opened from the host (each container has its own devpts), so the container
# exposes each module's raw TCP serial endpoint instead; conf/docker.json
# listens on 0.0.0.0 for that reason (Docker's forwarding does not reach the
# container's loopback).
# Use your own configuration with -v ./my.json:/etc/vmodule/vmoduled.json:ro

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config \
      libuv1-dev libmosquitto-dev libssl-dev libcurl4-openssl-dev libcjson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include ./include
COPY src ./src
RUN make -j"$(nproc)" CI=true all && strip build/vmoduled build/vmodulectl

# The cloud side: no compiler, no C library of ours. openssl makes the CA of
# the registration server (scripts/vmcloud/tls.py). Its own uid, not the
# runtime stage's vmodule (999): the compose file shares the certificate
# directory with vmoduled, which can then read ca.crt but not the 0600 keys.
FROM debian:bookworm-slim AS cloud
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-paho-mqtt openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 990 --home-dir /var/lib/vmodule-cloud --shell /usr/sbin/nologin vmcloud \
 && install -d -o vmcloud -g vmcloud -m 0755 /var/lib/vmodule-cloud /var/lib/vmodule-cloud/certs
COPY scripts/vmodule-cloud /usr/local/lib/vmodule-cloud/vmodule-cloud
COPY scripts/vmcloud /usr/local/lib/vmodule-cloud/vmcloud
RUN ln -s /usr/local/lib/vmodule-cloud/vmodule-cloud /usr/local/bin/vmodule-cloud
USER vmcloud
# The CA and server certificate of the registration server (kept, so modules
# configured with ca.crt keep trusting it).
VOLUME /var/lib/vmodule-cloud/certs
ENTRYPOINT ["/usr/local/bin/vmodule-cloud"]
CMD ["--help"]

# A broker for the compose file, from Debian's package (no registry needed).
FROM debian:bookworm-slim AS mosquitto
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto \
 && rm -rf /var/lib/apt/lists/* \
 && printf '%s\n' 'listener 1883 0.0.0.0' 'allow_anonymous true' 'persistence false' \
      'log_dest stderr' 'connection_messages false' > /etc/mosquitto/compose.conf
USER mosquitto
EXPOSE 1883
# A TCP connect to the listener (bash's /dev/tcp: no client package needed);
# the compose file starts the cloud side once this passes. Connection messages
# are off, or this check would log two lines every 3 s.
HEALTHCHECK --interval=3s --timeout=2s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/1883"]
ENTRYPOINT ["/usr/sbin/mosquitto"]
CMD ["-c", "/etc/mosquitto/compose.conf"]

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libmosquitto1 libssl3 libcurl4 libcjson1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/vmodule --shell /usr/sbin/nologin vmodule \
 && install -d -o vmodule -g vmodule -m 0750 /var/lib/vmodule /run/vmodule
COPY --from=build /src/build/vmoduled /usr/local/bin/vmoduled
COPY --from=build /src/build/vmodulectl /usr/local/bin/vmodulectl
COPY conf/docker.json /etc/vmodule/vmoduled.json
USER vmodule
# The simulated flash (Wi-Fi credentials, device secrets, OTA images); the
# control socket is there too (<state_dir>/control.sock, vmodulectl's default).
VOLUME /var/lib/vmodule
# tencent0, w800-0, me3630-0 raw TCP serial endpoints (conf/docker.json).
EXPOSE 5555 5556 5557
# One JSON request on the control socket: answers while the loop runs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/vmodulectl", "list"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vmoduled"]
CMD ["-c", "/etc/vmodule/vmoduled.json"]
