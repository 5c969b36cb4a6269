# vmodule - build, test, install.
#   make            build/vmoduled
#   make test       C unit tests (cmocka) + integration tests (pytest)
#   make asan       the whole suite under AddressSanitizer + UBSan (build-asan/)
#   make fuzz       every libFuzzer target FUZZ_SECONDS (60) seconds (clang, build-fuzz/)
#   make bench      benchmarks (not part of make test)
#   make install    PREFIX=/usr/local DESTDIR=  (README "Install as a service")
#   make uninstall  the same variables; an edited configuration stays

PREFIX ?= /usr/local
DESTDIR ?=
# The installed paths (what the installed unit names; DESTDIR is only
# prepended when writing). The configuration goes to /etc for PREFIX=/usr,
# as distributions do, and to $(PREFIX)/etc otherwise.
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= $(if $(filter /usr /usr/,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
CONFDIR = $(SYSCONFDIR)/vmodule
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

SRCS := $(shell find src -name '*.c' -not -path 'src/vmodulectl/*' | sort)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit integration asan fuzz fuzz-build bench install uninstall clean

all: $(BUILD)/vmoduled $(BUILD)/vmodulectl

$(BUILD)/vmoduled: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the control client: cJSON only, and the state directory rule of the daemon
$(BUILD)/vmodulectl: $(BUILD)/src/vmodulectl/vmodulectl.o $(BUILD)/src/statedir.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libcjson) -lm

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

integration: $(BUILD)/vmoduled $(BUILD)/vmodulectl $(BUILD)/tests/mqtt_probe
	VMODULED=$(abspath $(BUILD)/vmoduled) MQTT_PROBE=$(abspath $(BUILD)/tests/mqtt_probe) $(PYTHON) -m pytest -q tests/integration

test: all unit integration

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow" \
	  LDFLAGS="-fsanitize=address,undefined" test

# libFuzzer targets (tests/fuzz/, README "Fuzzing"): built with clang into
# build-fuzz/, the library instrumented for coverage (fuzzer-no-link), under
# ASan + UBSan (float-cast-overflow named: it is the point of some targets),
# every finding fatal. tests/fuzz/run.sh runs each on its seed corpus
# tests/fuzz/<target>/ (read-only) in a loopback-only network namespace.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZ_TARGETS := params config engine_tencent engine_w800 engine_me3630 tc_time tc_gateway tc_ota \
                tc_dynreg me_auth ws_upgrade ws_frames
FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

# one engine target per dialect, from one source
$(BUILD)/fuzz/fuzz_engine_%: tests/fuzz/fuzz_engine.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DFUZZ_DIALECT=$* -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	  LDFLAGS="$(FUZZ_SAN)" fuzz-build
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(BUILD)/bench/pty_echo: tests/bench/pty_echo.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/bench/mqtt_direct: tests/bench/mqtt_direct.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(shell pkg-config --libs libmosquitto)

bench: all $(BUILD)/bench/pty_echo $(BUILD)/bench/mqtt_direct
	VMODULED=$(abspath $(BUILD)/vmoduled) $(PYTHON) tests/bench/run.py

# The unit is conf/vmoduled.service with @BINDIR@ and @SYSCONFDIR@ filled in.
# The example configuration is always installed as vmoduled.json.example;
# vmoduled.json only when there is none (an edited one is never replaced).
# The vmodule user comes from sysusers.d: systemd-sysusers makes it at boot,
# and here at once for a real install (no DESTDIR) so the unit can start.
install: all
	install -D -m 0755 $(BUILD)/vmoduled $(DESTDIR)$(BINDIR)/vmoduled
	install -D -m 0755 $(BUILD)/vmodulectl $(DESTDIR)$(BINDIR)/vmodulectl
	install -D -m 0644 conf/vmoduled.json $(DESTDIR)$(CONFDIR)/vmoduled.json.example
	@if [ -e $(DESTDIR)$(CONFDIR)/vmoduled.json ]; then \
	  echo "kept $(DESTDIR)$(CONFDIR)/vmoduled.json (the new example is vmoduled.json.example)"; \
	else echo "install -m 0644 conf/vmoduled.json $(DESTDIR)$(CONFDIR)/vmoduled.json"; \
	  install -m 0644 conf/vmoduled.json $(DESTDIR)$(CONFDIR)/vmoduled.json; fi
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' conf/vmoduled.service \
	  > $(DESTDIR)$(UNITDIR)/vmoduled.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/vmoduled.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/vmoduled.service.tmp $(DESTDIR)$(UNITDIR)/vmoduled.service
	install -D -m 0644 conf/vmoduled.sysusers $(DESTDIR)$(SYSUSERSDIR)/vmodule.conf
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null 2>&1; then \
	  echo "systemd-sysusers $(SYSUSERSDIR)/vmodule.conf"; systemd-sysusers $(SYSUSERSDIR)/vmodule.conf; fi

# Removes what install wrote; vmoduled.json only while it is still the
# installed example. The vmodule user, /var/lib/vmodule (the flash) and
# /var/log/vmodule (traces) stay, as package managers leave them.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vmoduled $(DESTDIR)$(BINDIR)/vmodulectl
	rm -f $(DESTDIR)$(UNITDIR)/vmoduled.service $(DESTDIR)$(SYSUSERSDIR)/vmodule.conf
	@c=$(DESTDIR)$(CONFDIR)/vmoduled.json; \
	if [ -e $$c ] && ! cmp -s $$c $$c.example; then echo "kept $$c (edited)"; \
	else echo "rm -f $$c"; rm -f $$c; fi
	rm -f $(DESTDIR)$(CONFDIR)/vmoduled.json.example
	@if [ -d $(DESTDIR)$(CONFDIR) ]; then rmdir --ignore-fail-on-non-empty $(DESTDIR)$(CONFDIR); fi

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJS:.o=.d) $(LIB_OBJS:.o=.d) $(BUILD)/src/vmodulectl/vmodulectl.d
