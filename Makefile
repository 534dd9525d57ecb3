# sark-gateway: nginx module + sarkd sidecar.
#
#   make              build build/ngx_http_sark_module.so and build/sarkd
#   make test         install dependencies, build, and run every test
#   make run | stop   start / stop the dev stack on 127.0.0.1:8000
#   make asan         sanitizer build of both into build/asan/
#   make help         list the targets

include configure.ext

BUILD       ?= release
ROOT        := $(CURDIR)

ifeq ($(BUILD),asan)
B           := build/asan
SAN         := -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
MALLOC      := libc
else
B           := build
SAN         :=
endif

MODULE_SO   := $(B)/ngx_http_sark_module.so

SARKD       := $(B)/sarkd
NGX_BLD     := $(B)/ngx

MODULE_SRCS := $(wildcard ngx_module/*.c) $(wildcard ngx_module/*.h) \
               ngx_module/config $(wildcard shared/*.h)

# The module is compiled by nginx's own build with Debian's flags, and calls
# from it go straight through the GOT, not PLT stubs (-fno-plt), and to its
# own functions directly (-fno-semantic-interposition): fewer code and data
# lines per request on the L1-hit paths.  The sanitizer build also defines
# NGX_DEBUG_PALLOC so pool allocations are visible to ASan.
NGX_CC_OPT  := $(shell dpkg-buildflags --get CFLAGS 2>/dev/null) -fPIC -fno-plt -fno-semantic-interposition \
               $(shell dpkg-buildflags --get CPPFLAGS 2>/dev/null) $(SAN)
NGX_LD_OPT  := $(shell dpkg-buildflags --get LDFLAGS 2>/dev/null) -fPIC $(SAN)
ifeq ($(BUILD),asan)
NGX_CC_OPT  += -DNGX_DEBUG_PALLOC=1
endif

# sarkd's sources are grouped by concern in subdirectories of daemon/
# (core, proto, authz, cache, audit) and include each other by their path
# from daemon/ ("cache/l2_cache.h").  Objects and their dependency files
# (-MMD) mirror that layout under $(B)/daemon/.
DAEMON_SRCS := $(wildcard daemon/*/*.cc)
DAEMON_OBJS := $(patsubst daemon/%.cc,$(B)/daemon/%.o,$(DAEMON_SRCS))
# sarkd gets Debian's hardening (fortify, stack protector, format checks;
# full RELRO, bind now) like the module, except in the sanitizer build.
# Warnings are errors here and in CI; a packager's release build may drop
# that with `make WERROR=` (a newer compiler's new warning then does not
# stop it).
WERROR      ?= -Werror
ifneq ($(BUILD),asan)
HARDEN_CPPFLAGS := $(shell DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS 2>/dev/null)
HARDEN_CXXFLAGS := $(filter -fstack-protector% -Wformat% -Werror=format%,\
               $(shell DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CXXFLAGS 2>/dev/null))
HARDEN_LDFLAGS  := $(shell DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS 2>/dev/null)
endif
CXXFLAGS    := -std=$(CXXSTD) $(OPT) -g -Wall -Wextra $(WERROR) -pthread \
               $(HARDEN_CPPFLAGS) $(HARDEN_CXXFLAGS) \
               -Idaemon -Ishared $(SAN) \
               $(shell pkg-config --cflags libcurl libpq 2>/dev/null)
DAEMON_LIBS := $(shell pkg-config --libs libcurl hiredis libpq 2>/dev/null) -lcrypto
ifeq ($(MALLOC),jemalloc)
DAEMON_LIBS += -ljemalloc
endif

UNIT_CFLAGS := -std=gnu99 $(OPT) -g -Wall -Wextra -Werror -Ishared -It/unit \
               -Ingx_module $(SAN) \
               $(shell pkg-config --cflags check 2>/dev/null)
UNIT_LIBS   := $(shell pkg-config --libs check 2>/dev/null) -lcrypto
UNITS       := check_proto check_key check_json check_jwt \
               check_sarkd_glob check_sarkd_cache check_sarkd_config \
               check_sarkd_audit_rows check_sarkd_spool check_sarkd_provenance \
               check_sarkd_peer check_sarkd_l2_seal check_sarkd_keys
UNIT_BINS   := $(addprefix $(B)/unit/,$(UNITS))
UNIT_CXXFLAGS := -std=$(CXXSTD) $(OPT) -g -Wall -Wextra -Werror -Idaemon \
               -Ishared $(SAN) $(shell pkg-config --cflags check 2>/dev/null)
SARKD_DEPS  := $(wildcard daemon/*/*.h) $(wildcard shared/*.h) $(B)/.flags
SARKD_CACHE_SRCS := daemon/cache/cache_entry.cc daemon/core/json_util.cc \
               daemon/cache/glob.cc daemon/cache/recent_invalidations.cc \
               daemon/core/circuit_breaker.cc

OPA          = $(shell scripts/setup --print-opa)

# Environment of the private stack the integration tests run against.
TEST_RUN    ?= $(ROOT)/run/test
TEST_ENV     = SARK_RUN_DIR=$(TEST_RUN) \
               SARK_NGINX_PORT=$(TEST_NGINX_PORT) \
               SARK_OPA_PORT=$(TEST_OPA_PORT) \
               SARK_REDIS_PORT=$(TEST_REDIS_PORT) \
               SARK_PG_PORT=$(TEST_PG_PORT) \
               SARK_PGBOUNCER_PORT=$(TEST_PGBOUNCER_PORT) \
               SARK_MCP_PORT=$(TEST_MCP_PORT) \
               SARK_BUILD_DIR=$(ROOT)/$(B) \
               SARK_MODULE=$(ROOT)/$(MODULE_SO) \
               SARKD_BIN=$(ROOT)/$(SARKD) \
               $(if $(filter asan,$(BUILD)),SARK_NGINX_BINARY=$(ROOT)/scripts/nginx-asan)

.PHONY: all help setup test unit t policy-test run stop status asan \
        clean valgrind install uninstall soak FORCE

## all: build the nginx module and sarkd
all: $(MODULE_SO) $(SARKD)

help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## setup: install Debian packages and OPA (idempotent)
setup:
	@scripts/setup

# Rebuild what a change of flags affects: sarkd and the unit tests
# (.flags), the module (.ngx-flags).
define flags_file
	@mkdir -p $(B)
	@echo '$(1)' | cmp -s - $@ || echo '$(1)' > $@
endef
$(B)/.flags: FORCE
	$(call flags_file,$(CXXFLAGS) $(UNIT_CFLAGS) $(DAEMON_LIBS))
$(B)/.ngx-flags: FORCE
	$(call flags_file,$(NGX_CC_OPT) $(NGX_LD_OPT))

$(NGX_BLD)/Makefile: ngx_module/config configure.ext $(B)/.ngx-flags
	@mkdir -p $(NGX_BLD)
	@echo "  CONFIGURE nginx module ($(BUILD))"
	@cd $(NGINX_SRC) && bash -c '. ./conf_flags; ./configure \
	    --with-cc-opt="$(NGX_CC_OPT)" --with-ld-opt="$(NGX_LD_OPT)" \
	    "$${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$(ROOT)/ngx_module" \
	    --builddir="$(ROOT)/$(NGX_BLD)"' > $(ROOT)/$(NGX_BLD)/configure.log 2>&1 \
	    || { tail -20 $(ROOT)/$(NGX_BLD)/configure.log; exit 1; }

$(MODULE_SO): $(NGX_BLD)/Makefile $(MODULE_SRCS)
	@echo "  BUILD     $@"
	@$(MAKE) -s -f $(ROOT)/$(NGX_BLD)/Makefile -C $(NGINX_SRC) modules \
	    > $(NGX_BLD)/build.log 2>&1 || { cat $(NGX_BLD)/build.log; exit 1; }
	@mkdir -p $(@D)
	@cp $(NGX_BLD)/ngx_http_sark_module.so $@.tmp && mv -f $@.tmp $@

$(B)/daemon/%.o: daemon/%.cc $(B)/.flags
	@mkdir -p $(@D)
	@echo "  CXX       $<"
	@$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(SARKD): $(DAEMON_OBJS)
	@echo "  LINK      $@"
	@$(CXX) $(CXXFLAGS) $(HARDEN_LDFLAGS) $^ -o $@.tmp $(DAEMON_LIBS) && mv -f $@.tmp $@

-include $(DAEMON_OBJS:.o=.d)

$(B)/unit/check_proto: t/unit/check_proto.c shared/sark_proto.h $(B)/.flags
	@mkdir -p $(B)/unit
	@$(CC) $(UNIT_CFLAGS) $< -o $@ $(UNIT_LIBS)

$(B)/unit/check_key: t/unit/check_key.c shared/sark_key.h $(B)/.flags
	@mkdir -p $(B)/unit
	@$(CC) $(UNIT_CFLAGS) $< -o $@ $(UNIT_LIBS)

$(B)/unit/check_json: t/unit/check_json.c t/unit/test_arena.h ngx_module/sark_json.c \
                      ngx_module/sark_json.h $(B)/.flags
	@mkdir -p $(B)/unit
	@$(CC) $(UNIT_CFLAGS) t/unit/check_json.c ngx_module/sark_json.c \
	    -o $@ $(UNIT_LIBS)

$(B)/unit/check_jwt: t/unit/check_jwt.c t/unit/test_arena.h ngx_module/sark_jwt.c \
                     ngx_module/sark_jwt.h ngx_module/sark_json.c \
                     ngx_module/sark_json.h $(B)/.flags
	@mkdir -p $(B)/unit
	@$(CC) $(UNIT_CFLAGS) t/unit/check_jwt.c ngx_module/sark_jwt.c \
	    ngx_module/sark_json.c -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_glob: t/unit/check_sarkd_glob.cc daemon/cache/glob.cc \
                            $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_glob.cc daemon/cache/glob.cc \
	    -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_cache: t/unit/check_sarkd_cache.cc $(SARKD_CACHE_SRCS) \
                             $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_cache.cc $(SARKD_CACHE_SRCS) \
	    -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_config: t/unit/check_sarkd_config.cc daemon/core/config.cc \
                              daemon/core/log.cc daemon/proto/peer_check.cc \
                              $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_config.cc daemon/core/config.cc \
	    daemon/core/log.cc daemon/proto/peer_check.cc -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_peer: t/unit/check_sarkd_peer.cc daemon/proto/peer_check.cc \
                            $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_peer.cc daemon/proto/peer_check.cc \
	    -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_l2_seal: t/unit/check_sarkd_l2_seal.cc daemon/cache/l2_seal.cc \
                               daemon/cache/channel_seal.cc $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_l2_seal.cc daemon/cache/l2_seal.cc \
	    daemon/cache/channel_seal.cc -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_keys: t/unit/check_sarkd_keys.cc daemon/keys/gateway_keys.cc \
                           $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_keys.cc daemon/keys/gateway_keys.cc \
	    -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_audit_rows: t/unit/check_sarkd_audit_rows.cc \
                                  daemon/audit/audit_rows.cc daemon/core/json_util.cc \
                                  $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_audit_rows.cc \
	    daemon/audit/audit_rows.cc daemon/core/json_util.cc -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_spool: t/unit/check_sarkd_spool.cc \
                             daemon/audit/audit_spool.cc daemon/core/log.cc \
                             $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_spool.cc \
	    daemon/audit/audit_spool.cc daemon/core/log.cc -o $@ $(UNIT_LIBS)

$(B)/unit/check_sarkd_provenance: t/unit/check_sarkd_provenance.cc \
                                  daemon/authz/provenance.cc $(SARKD_DEPS)
	@mkdir -p $(B)/unit
	@$(CXX) $(UNIT_CXXFLAGS) t/unit/check_sarkd_provenance.cc \
	    daemon/authz/provenance.cc -o $@ $(UNIT_LIBS)

## unit: build and run the Check unit tests
unit: $(UNIT_BINS)
	@set -e; for u in $(UNIT_BINS); do echo "== $$u"; $$u; done

## policy-test: run the Rego unit tests (opa test)
policy-test:
	@$(OPA) test policies/ -v | tail -3
	@$(OPA) test policies/ >/dev/null

## t: run the integration suites in t/ against real nginx, sarkd and OPA
t: all
	@$(TEST_ENV) scripts/stack stop >/dev/null 2>&1 || true
	@$(TEST_ENV) scripts/stack start postgres opa redis sarkd mcp \
	    || { $(TEST_ENV) scripts/stack stop >/dev/null 2>&1; exit 1; }
	@set -a; . conf/dev.env; set +a; \
	    $(TEST_ENV) TEST_NGINX_SERVER_PORT=$(TEST_NGINX_PORT) \
	    TEST_NGINX_SARKD_SOCKET=$(TEST_RUN)/sarkd.sock \
	    TEST_NGINX_JWT_SECRET=$$SARK_JWT_SECRET \
	    TEST_NGINX_JWT_ISSUER=$$SARK_JWT_ISSUER \
	    TEST_NGINX_JWT_AUDIENCE=$$SARK_JWT_AUDIENCE \
	    TEST_NGINX_OPA_PORT=$(TEST_OPA_PORT) \
	    TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) \
	    TEST_NGINX_PG_PORT=$(TEST_PG_PORT) \
	    TEST_NGINX_PGBOUNCER_PORT=$(TEST_PGBOUNCER_PORT) \
	    TEST_NGINX_MCP_PORT=$(TEST_MCP_PORT) \
	    $(if $(filter asan,$(BUILD)),TEST_NGINX_BINARY=$(ROOT)/scripts/nginx-asan) \
	    prove -I t/lib $(PROVE_FLAGS) $(or $(TESTS),t/); rc=$$?; \
	    $(TEST_ENV) SARK_RUN_DIR=$(TEST_RUN)/host2 scripts/stack stop >/dev/null 2>&1; \
	    $(TEST_ENV) scripts/stack stop >/dev/null 2>&1; exit $$rc

## test: everything a fresh machine needs, then every test
test: setup
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory policy-test
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory t

## asan: build module, sarkd and unit tests with ASan/UBSan (build/asan)
asan:
	@$(MAKE) --no-print-directory BUILD=asan all $(addprefix build/asan/unit/,$(UNITS))

## valgrind: the unit tests, then the integration suites with sarkd, under valgrind
VG_SARKD_LOGS = $(TEST_RUN)/valgrind
valgrind: $(UNIT_BINS) all
	@set -e; for u in $(UNIT_BINS); do \
	    CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full $$u; done
	@rm -rf $(VG_SARKD_LOGS) && mkdir -p $(VG_SARKD_LOGS)
	@$(MAKE) --no-print-directory t SARKD_WRAPPER="valgrind -q \
	    --leak-check=full --show-leak-kinds=definite \
	    --errors-for-leak-kinds=definite \
	    --log-file=$(VG_SARKD_LOGS)/sarkd.%p.log"
	@n=$$(ls $(VG_SARKD_LOGS) | wc -l); bad=$$(find $(VG_SARKD_LOGS) -type f -size +0); \
	    if [ -n "$$bad" ]; then cat $$bad; echo "valgrind found errors in sarkd: $$bad"; exit 1; fi; \
	    if [ "$$n" -eq 0 ]; then echo "sarkd never ran under valgrind"; exit 1; fi; \
	    echo "valgrind: $$n sarkd runs, no errors, no leaks"

## run: start the dev stack (Redis, PostgreSQL, OPA, sarkd, the MCP server, nginx on 127.0.0.1:8000)
run: setup
	@$(MAKE) --no-print-directory all
	@scripts/stack start
	@scripts/stack hint

## stop: stop the dev stack
stop:
	@scripts/stack stop

## status: show what of the dev stack is running
status:
	@scripts/stack status

## bench-ir: instructions per request the module adds (valgrind callgrind)
.PHONY: bench-ir
bench-ir: all
	@SARK_BUILD_DIR=$(ROOT)/$(B) SARK_MODULE=$(ROOT)/$(MODULE_SO) \
	    SARKD_BIN=$(ROOT)/$(SARKD) scripts/bench-ir

## soak: 30 minutes of decisions at 1,000/s; fails if a worker or sarkd grows
soak: all
	@SARK_BUILD_DIR=$(ROOT)/$(B) SARK_MODULE=$(ROOT)/$(MODULE_SO) \
	    SARKD_BIN=$(ROOT)/$(SARKD) scripts/soak

## bench: the benchmarks of docs/design.md (Performance targets): throughput ratios, then latency
.PHONY: bench bench-stack
bench: all
	@SARK_BUILD_DIR=$(ROOT)/$(B) SARK_MODULE=$(ROOT)/$(MODULE_SO) \
	    SARKD_BIN=$(ROOT)/$(SARKD) scripts/bench
	@$(MAKE) --no-print-directory bench-stack

## bench-stack: whole-stack scenarios: L2 and miss latency (open loop), the 95 % hits mix
bench-stack: all
	@SARK_BUILD_DIR=$(ROOT)/$(B) SARK_MODULE=$(ROOT)/$(MODULE_SO) \
	    SARKD_BIN=$(ROOT)/$(SARKD) scripts/bench-stack

PREFIX      ?= /usr/local
NGX_MODDIR  ?= /usr/lib/nginx/modules
SYSTEMD_UNITDIR ?= /lib/systemd/system
SYSUSERS_DIR ?= /usr/lib/sysusers.d

## install: install the module, sarkd, its settings, the sark user and the systemd unit
install: all
	install -D -m 0644 $(MODULE_SO) $(DESTDIR)$(NGX_MODDIR)/ngx_http_sark_module.so
	install -D -m 0755 $(SARKD) $(DESTDIR)$(PREFIX)/sbin/sarkd
	install -d $(DESTDIR)$(SYSTEMD_UNITDIR)
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' conf/sarkd.service \
	    >$(DESTDIR)$(SYSTEMD_UNITDIR)/sarkd.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNITDIR)/sarkd.service
	install -D -m 0644 conf/sark-gateway.sysusers \
	    $(DESTDIR)$(SYSUSERS_DIR)/sark-gateway.conf
	install -d $(DESTDIR)/etc/sark/policies
	install -m 0644 $(filter-out %_test.rego,$(wildcard policies/*.rego)) \
	    $(DESTDIR)/etc/sark/policies/
	test -e $(DESTDIR)/etc/sark/policies/data.json || \
	    install -m 0644 policies/data.json $(DESTDIR)/etc/sark/policies/data.json
	test -e $(DESTDIR)/etc/sark/sarkd.env || \
	    install -m 0640 conf/sarkd.env $(DESTDIR)/etc/sark/sarkd.env
	install -D -m 0644 README.md $(DESTDIR)/usr/share/doc/sark-gateway/README.md
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
	    systemd-sysusers $(SYSUSERS_DIR)/sark-gateway.conf; \
	    if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi

## uninstall: remove what install put there (settings in /etc/sark stay)
uninstall:
	rm -f $(DESTDIR)$(NGX_MODDIR)/ngx_http_sark_module.so \
	    $(DESTDIR)$(PREFIX)/sbin/sarkd \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/sarkd.service \
	    $(DESTDIR)$(SYSUSERS_DIR)/sark-gateway.conf \
	    $(DESTDIR)/usr/share/doc/sark-gateway/README.md
	rm -f $(addprefix $(DESTDIR)/etc/sark/policies/,\
	    $(notdir $(filter-out %_test.rego,$(wildcard policies/*.rego))))
	-rmdir $(DESTDIR)/usr/share/doc/sark-gateway 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf build
