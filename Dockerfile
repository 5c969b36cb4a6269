# Dockerfile - vmoduled in a container. Build stage compiles with Debian 12's
# -dev packages; the runtime stage has only the shared libraries.
#
#   docker build -t vmodule .
#   docker run --rm -p 5555-5557:5555-5557 vmodule
#   # on the host: a PTY for the firmware, bridged to the container's TCP port
#   socat pty,rawer,link=/tmp/ttyVM0 tcp:127.0.0.1:5555
#
# A PTY made inside a container cannot be opened from the host (each container
# has its own devpts), so the container exposes each module's raw TCP serial
# endpoint instead; conf/docker.json listens on 0.0.0.0 for that reason.
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
RUN make -j"$(nproc)" CI=true && strip build/vmoduled

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libmosquitto1 libssl3 libcurl4 libcjson1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/vmodule --shell /usr/sbin/nologin vmodule \
 && install -d -o vmodule -g vmodule -m 0750 /var/lib/vmodule /run/vmodule
COPY --from=build /src/build/vmoduled /usr/local/bin/vmoduled
COPY conf/docker.json /etc/vmodule/vmoduled.json
USER vmodule
# The simulated flash (Wi-Fi credentials, device secrets, OTA images).
VOLUME /var/lib/vmodule
# tencent0, w800-0, me3630-0 raw TCP serial endpoints (conf/docker.json).
EXPOSE 5555 5556 5557
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vmoduled"]
CMD ["-c", "/etc/vmodule/vmoduled.json"]
