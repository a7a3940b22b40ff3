# cache_ext/Makefile

MODULE_big = cache_ext
OBJS = \
	src/cache_ext.o \
	src/allowlist.o \
	src/deps.o \
	src/entry.o \
	src/entry_format.o \
	src/invalidate.o \
	src/keys.o \
	src/outbox.o \
	src/query.o \
	src/stats.o \
	src/store/store.o \
	src/store/store_reply.o \
	src/redis/client.o \
	src/redis/text.o \
	src/redis/transport.o \
	src/redis/url.o

EXTENSION = cache_ext
DATA = $(wildcard sql/cache_ext--*.sql)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(filter-out sql/cache_ext%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=cache_ext --inputdir=.

PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK += $(shell pkg-config --libs hiredis openssl)

EXTRA_CLEAN = test/fuzz/fuzz_entry test/fuzz/crash-* test/fuzz/leak-*

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# no automatic dependency tracking in PGXS: rebuild everything when a header changes
$(OBJS): $(wildcard src/*.h src/redis/*.h src/store/*.h)
