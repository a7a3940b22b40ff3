/*-------------------------------------------------------------------------
 *
 * invalidate.c
 *	  Commit-ordered invalidation with generations (docs/architecture.md,
 *	  docs/invalidation.md): its settings and its start-up (InvalInit).
 *
 * The invalidation side is split by concern:
 *	tracking.c	which relations are tracked, by which key columns (read
 *				from the triggers of ours, cached per backend)
 *	xactset.c	the per-transaction set of touched generation keys, the
 *				commit callbacks that bump them, prepared transactions
 *	ddl.c		the ProcessUtility hook: what DDL changes
 *	triggers.c	installing and checking the triggers; the trigger function
 *	admin.c		cache_track, cache_untrack, cache_relation_tracking,
 *				cache_invalidate*, cache_flush, cache_purge
 *	outbox.c	shared memory: bumps Redis has not taken yet, server-wide
 *				state, the standby lease
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/genam.h"
#include "catalog/pg_depend.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_control.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "common/controldata_utils.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/snapmgr.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/datum.h"
#include "utils/uuid.h"
#include "utils/resowner.h"

#include "cache_ext.h"
#include "invalidate.h"
#include "commitq.h"
#include "inval_internal.h"
#include "outbox.h"
#include "keys.h"
#include "catalog_inval.h"

int cache_ext_untracked = UNTRACKED_ALLOW;
int cache_ext_invalidation_timeout = 250;
int cache_ext_max_keys_per_xact = 100;

/* From _PG_init: the callbacks and hooks of the invalidation side. */
void
InvalInit(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	RegisterResourceReleaseCallback(release_callback, NULL);
	CatalogInvalOnRelcache(rel_infos_invalidate);
	OutboxInit();
	if (process_shared_preload_libraries_in_progress)
		DdlHookInstall();
}


/*
 * The trigger: note the write.  Statement-level for tables; row-level on
 * partitions (cloned) and during logical-replication apply, where the
 * shortcut below makes every row after the first cost a comparison.
 */

static const struct config_enum_entry untracked_options[] = {
	{"allow", UNTRACKED_ALLOW, false},
	{"bypass", UNTRACKED_BYPASS, false},
	{"error", UNTRACKED_ERROR, false},
	{NULL, 0, false}};

/* The settings of the invalidation side. */
void
InvalDefineGucs(void)
{
	DefineCustomEnumVariable("cache_ext.untracked",
							 "What cached_query does with a query that reads a table whose writes are not tracked.",
							 "allow caches it under its TTL only (and says so), bypass runs it uncached, error refuses it.",
							 &cache_ext_untracked,
							 UNTRACKED_ALLOW, untracked_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.invalidation_timeout",
							"Longest wait at commit for Redis to take the transaction's invalidations.",
							"Past it they are kept in shared memory and this server serves no hits until they are delivered.",
							&cache_ext_invalidation_timeout,
							250, 1, 60 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("cache_ext.async_invalidation",
							 "Whether a commit hands its invalidations to the background worker instead of waiting for Redis.",
							 "Readers on this server wait until they are in Redis; hot standbys wait for the primary's watermark. Off: every commit waits for one round trip, as before 0.5.",
							 &cache_ext_async_commit,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.watermark_interval",
							"How often the primary publishes its invalidation watermark for hot standbys while WAL is written.",
							"A hot standby serves hits only when the watermark has reached the WAL it replayed.",
							&cache_ext_watermark_interval,
							5, 1, 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.max_keys_per_xact",
							"Most key values of one key-tracked table a transaction invalidates one by one.",
							"Past it, every key-level result of that table is invalidated at once.",
							&cache_ext_max_keys_per_xact,
							100, 1, 100000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}
