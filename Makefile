# vmodule - build, test, install.
#   make            build/vmoduled
#   make test       C unit tests (cmocka) + integration tests (pytest)
#   make asan       the whole suite under AddressSanitizer + UBSan (build-asan/)
#   make bench      benchmarks (not part of make test)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
PYTHON ?= /usr/bin/python3
PKGS := libuv libmosquitto libssl libcrypto libcurl libcjson

CC ?= cc
WERROR ?= $(if $(CI),-Werror,)
CFLAGS ?= -O2 -g
# override: `make asan` (and users) set CFLAGS on the command line, which would
# otherwise silently drop these required flags.
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter $(WERROR) \
          -Iinclude $(shell pkg-config --cflags $(PKGS))
override LDLIBS += $(shell pkg-config --libs $(PKGS))

SRCS := $(shell find src -name '*.c' | sort)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit integration asan bench install clean

all: $(BUILD)/vmoduled

$(BUILD)/vmoduled: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# the standalone MQTT session probe driven by tests/integration/test_mqtt_session.py
$(BUILD)/tests/mqtt_probe: tests/unit/mqtt_probe.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BUILD)/vmoduled $(BUILD)/tests/mqtt_probe
	VMODULED=$(abspath $(BUILD)/vmoduled) MQTT_PROBE=$(abspath $(BUILD)/tests/mqtt_probe) $(PYTHON) -m pytest -q tests/integration

test: all unit integration

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow" \
	  LDFLAGS="-fsanitize=address,undefined" test

$(BUILD)/bench/pty_echo: tests/bench/pty_echo.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/bench/mqtt_direct: tests/bench/mqtt_direct.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(shell pkg-config --libs libmosquitto)

bench: all $(BUILD)/bench/pty_echo $(BUILD)/bench/mqtt_direct
	VMODULED=$(abspath $(BUILD)/vmoduled) $(PYTHON) tests/bench/run.py

install: all
	install -D -m 0755 $(BUILD)/vmoduled $(DESTDIR)$(PREFIX)/bin/vmoduled
	install -D -m 0644 conf/vmoduled.json $(DESTDIR)$(PREFIX)/etc/vmodule/vmoduled.json
	install -D -m 0644 conf/vmoduled.service $(DESTDIR)$(PREFIX)/lib/systemd/system/vmoduled.service

clean:
	rm -rf build build-asan

-include $(OBJS:.o=.d) $(LIB_OBJS:.o=.d)
