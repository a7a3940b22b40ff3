# cache_ext/Makefile

MODULE_big = cache_ext
OBJS = \
	src/cache_ext.o \
	src/allowlist.o \
	src/deps.o \
	src/deps_expr.o \
	src/keyeq.o \
	src/entry.o \
	src/entry_format.o \
	src/entry_frame.o \
	src/entry_pack.o \
	src/memory_keep.o \
	src/invalidate.o \
	src/tracking.o \
	src/xactset.o \
	src/ddl.o \
	src/triggers.o \
	src/admin.o \
	src/keys.o \
	src/outbox.o \
	src/outbox_worker.o \
	src/outbox_state.o \
	src/outbox_identity.o \
	src/commitq.o \
	src/l1.o \
	src/l1_gen.o \
	src/l1_rows.o \
	src/lookup.o \
	src/pipeline.o \
	src/outcome.o \
	src/sql_api.o \
	src/stmtcache.o \
	src/analysis.o \
	src/scopes.o \
	src/execute.o \
	src/subxact.o \
	src/sessions.o \
	src/sessions_user.o \
	src/session_format.o \
	src/explain.o \
	src/rules.o \
	src/rules_sql.o \
	src/policies.o \
	src/rules_exec.o \
	src/rules_serve.o \
	src/meaning.o \
	src/catalog_inval.o \
	src/stats.o \
	src/health.o \
	src/health_nodes.o \
	src/warm.o \
	src/refresh.o \
	src/refresh_worker.o \
	src/refresh_sched.o \
	src/flight.o \
	src/values.o \
	src/value_format.o \
	src/store/store_values.o \
	src/store/store.o \
	src/store/store_reply.o \
	src/store/store_lock.o \
	src/store/store_sessions.o \
	src/store/store_chunks.o \
	src/redis/client.o \
	src/redis/auth.o \
	src/redis/settings.o \
	src/redis/text.o \
	src/redis/resp.o \
	src/redis/cluster.o \
	src/redis/cluster_side.o \
	src/redis/cluster_map.o \
	src/redis/transport.o \
	src/redis/tls.o \
	src/redis/url.o \
	src/redis/sentinel.o

EXTENSION = cache_ext
DATA = $(wildcard sql/cache_ext--*.sql)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(filter-out sql/cache_ext%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=cache_ext --inputdir=.

PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK += $(shell pkg-config --libs hiredis openssl)

EXTRA_CLEAN = test/fuzz/fuzz_entry test/fuzz/crash-* test/fuzz/leak-* tmp_check cache_ext-*.zip

# TAP tests (test/t/*.pl, helpers in test/perl/CacheExt) run after pg_regress
# when asked for, as PGXS does with TAP_TESTS:
#   make installcheck TAP_TESTS=1            (or PROVE=prove on the command line)
#   make installcheck-tap PROVE_TESTS=test/t/010_hit_miss.pl   (TAP only)
# TAP_TESTS may also name files as test/run-tests.sh takes them
# (TAP_TESTS='t/010_hit_miss.pl t/020_redis_down.pl').  Each test starts its
# own PostgreSQL and redis-server; see docs/CONTRIBUTING.md for what it needs.
ifeq ($(origin PROVE),command line)
TAP_TESTS = 1
endif
ifneq ($(filter-out 1 yes,$(TAP_TESTS)),)
PROVE_TESTS ?= $(foreach t,$(TAP_TESTS),$(if $(wildcard test/$(t)),test/$(t),$(t)))
endif
PROVE_TESTS ?= $(sort $(wildcard test/t/*.pl))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# LZ4 compression where PostgreSQL was built with it (USE_LZ4) and liblz4's
# header is installed (liblz4-dev); pglz otherwise (src/entry_frame.c)
CE_LZ4 := $(shell grep -qs '^\#define USE_LZ4 1' '$(includedir_server)/pg_config.h' && pkg-config --exists liblz4 && echo yes)
ifeq ($(CE_LZ4),yes)
override CPPFLAGS += -DCE_HAVE_LZ4
SHLIB_LINK += $(shell pkg-config --libs liblz4)
endif

# no automatic dependency tracking in PGXS: rebuild everything when a header changes
$(OBJS): $(wildcard src/*.h src/redis/*.h src/store/*.h)

# the TAP tests' own Perl modules, beside PostgreSQL's (PG_PROVE_FLAGS)
PG_PROVE_FLAGS += -I $(srcdir)/test/perl

# What the TAP tests need that PGXS does not check: not root (initdb refuses
# to run as root; test/run-tests.sh runs them as the postgres user), and
# redis-server, redis-cli and openssl on the PATH.
.PHONY: tap-preflight installcheck-tap
tap-preflight:
	@if [ "$$(id -u)" = 0 ]; then \
		echo "TAP tests cannot run as root (initdb refuses): run make as another user, or bash test/run-tests.sh --only tap" >&2; exit 1; fi
	@for p in redis-server redis-cli openssl $(PROVE); do \
		command -v $$p >/dev/null 2>&1 || { echo "TAP tests need $$p on the PATH" >&2; exit 1; }; done

ifdef TAP_TESTS
installcheck: tap-preflight
endif

installcheck-tap: tap-preflight
	$(prove_installcheck)

# A PGXN release: the committed tree (HEAD) as cache_ext-VERSION.zip, with
# docs/META.json also at the archive's root, where PGXN reads it.
DIST_VERSION = $(shell python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' $(or $(srcdir),.)/docs/META.json)
.PHONY: dist
dist:
	git -C $(or $(srcdir),.) archive --format=zip --prefix=cache_ext-$(DIST_VERSION)/ \
		--add-file=$(or $(srcdir),.)/docs/META.json -o $(CURDIR)/cache_ext-$(DIST_VERSION).zip HEAD
	@echo "wrote cache_ext-$(DIST_VERSION).zip"
