/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  The admin SQL functions of the invalidation side: cache_track(),
 *	  cache_untrack(), cache_relation_tracking(), cache_invalidate(),
 *	  cache_invalidate_tag(), cache_flush() and cache_purge().
 *
 * No state of its own.
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
#include "outbox.h"
#include "keys.h"
#include "l1.h"
#include "inval_internal.h"
#include "store/store.h"

PG_FUNCTION_INFO_V1(cache_track);

Datum
cache_track(PG_FUNCTION_ARGS)
{
	Oid relid;
	List *all;
	ListCell *lc;
	List *keys = NIL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the relation to track must not be NULL")));
	relid = PG_GETARG_OID(0);
	check_trackable(relid, false);
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
		keys = check_key_columns(relid, PG_GETARG_ARRAYTYPE_P(1));
	if (get_rel_relkind(relid) == RELKIND_MATVIEW)
	{
		/* REFRESH and DDL are seen by the utility hook, preloaded only */
		if (InvalShmemReady())
			ereport(NOTICE,
					(errmsg("materialized view \"%s\" needs no tracking", get_rel_name(relid)),
					 errdetail("REFRESH MATERIALIZED VIEW and DDL invalidate the results that read it.")));
		else
			ereport(NOTICE,
					(errmsg("materialized view \"%s\" is not tracked: cache_ext is not in shared_preload_libraries", get_rel_name(relid)),
					 errdetail("Without the preload nothing sees REFRESH MATERIALIZED VIEW: results that read it are kept for their TTL only."),
					 errhint("Add cache_ext to shared_preload_libraries.")));
		PG_RETURN_VOID();
	}
	if (!OidIsValid(get_trigger_func()))
		elog(ERROR, "cache_ext_trigger() not found");

	/*
	 * A table and every partition or inheritance child under it.  Changing
	 * the key columns of a key-tracked table needs what DROP TRIGGER takes:
	 * a session in a transaction that still narrows by the old columns
	 * holds its lock and would not see the change, while writers bump only
	 * the new columns' keys.
	 */
	{
		RelInfo *ri = get_rel_info(relid);
		bool same = ri->nkeys == list_length(keys);
		LOCKMODE mode;

		for (int i = 0; same && i < ri->nkeys; i++)
			same = strcmp(NameStr(ri->keys[i]), (char *) list_nth(keys, i)) == 0;
		mode = (ri->nkeys > 0 && !same) ? AccessExclusiveLock : ShareRowExclusiveLock;
		LockRelationOid(relid, mode);
		all = find_all_inheritors(relid, mode, NULL);
	}
	foreach(lc, all)
	{
		Oid child = lfirst_oid(lc);

		if (child != relid)
		{
			char kind = get_rel_relkind(child);

			if (kind == RELKIND_FOREIGN_TABLE)
			{
				ereport(NOTICE,
						(errmsg("foreign table \"%s\" under \"%s\" cannot be tracked; results reading it are cached under their TTL only",
								get_rel_name(child), get_rel_name(relid))));
				continue;
			}
			if (!pg_class_ownercheck(child, GetUserId()))
				aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(kind),
							   get_rel_name(child));
		}
		install_triggers(child, child != relid && get_rel_relispartition(child), keys);
	}
	/* results stored before are under other keys; start clean anyway */
	touch_relation_tree(relid);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cache_untrack);

Datum
cache_untrack(PG_FUNCTION_ARGS)
{
	Oid relid = PG_GETARG_OID(0);
	List *all;
	ListCell *lc;
	static const char *const names[] = {"cache_ext_before", "cache_ext_stmt",
										"cache_ext_apply", "cache_ext_keys", "cache_ext_row", "cache_ext_truncate"};

	check_trackable(relid, true);
	if (get_rel_relkind(relid) == RELKIND_MATVIEW)
		PG_RETURN_VOID();
	touch_relation_tree(relid);
	LockRelationOid(relid, ShareRowExclusiveLock);
	all = find_all_inheritors(relid, ShareRowExclusiveLock, NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, all)
	{
		Oid child = lfirst_oid(lc);

		for (int i = 0; i < lengthof(names); i++)
		{
			bool ours;
			Relation rel;
			bool clone = false;

			if (trigger_state(child, names[i], &ours) == '\0' || !ours)
				continue;
			/* clones go with the parent's trigger */
			rel = RelationIdGetRelation(child);
			for (int j = 0; rel->trigdesc && j < rel->trigdesc->numtriggers; j++)
				if (strcmp(rel->trigdesc->triggers[j].tgname, names[i]) == 0)
					clone = rel->trigdesc->triggers[j].tgisclone;
			RelationClose(rel);
			if (clone)
				continue;
			spi_exec(psprintf("DROP TRIGGER %s ON %s", quote_identifier(names[i]),
							  qualified_name(child)));
			CommandCounterIncrement();
		}
	}
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cache_relation_tracking);

/* For the cache_tracked view: how relid is covered. */
Datum
cache_relation_tracking(PG_FUNCTION_ARGS)
{
	Oid relid = PG_GETARG_OID(0);
	TupleDesc tupdesc;
	Datum values[4];
	bool nulls[4] = {0};
	RelInfo *ri;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (get_rel_relkind(relid) == '\0')
		PG_RETURN_NULL();
	ri = get_rel_info(relid);
	values[0] = ObjectIdGetDatum(ri->scope);
	values[1] = BoolGetDatum(ri->coverage == REL_TRACKED);
	if (ri->why)
		values[2] = CStringGetTextDatum(ri->why);
	else
		nulls[2] = true;
	if (ri->nkeys > 0)
	{
		Datum k[INVAL_MAX_KEY_COLUMNS];

		for (int i = 0; i < ri->nkeys; i++)
			k[i] = CStringGetTextDatum(NameStr(ri->keys[i]));
		values[3] = PointerGetDatum(construct_array(k, ri->nkeys, TEXTOID, -1, false, TYPALIGN_INT));
	}
	else
		nulls[3] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(cache_invalidate);

/*
 * The invalidation functions only bump generations, and a hot standby
 * could bump them only in Redis: the primary's local tier (whose counters
 * only the primary's own commits bump) would keep serving what the caller
 * just invalidated.  So they refuse to run during recovery.
 */
static void
refuse_in_recovery(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cache invalidation cannot run on a hot standby"),
				 errhint("Run it on the primary: it invalidates the primary's local tier and Redis for every server.")));
}

Datum
cache_invalidate(PG_FUNCTION_ARGS)
{
	Oid relid = PG_GETARG_OID(0);
	char relkind = get_rel_relkind(relid);

	refuse_in_recovery();
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()) &&
		pg_class_aclcheck(relid, GetUserId(),
						  ACL_INSERT | ACL_UPDATE | ACL_DELETE | ACL_TRUNCATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to invalidate cached results of \"%s\"",
						get_rel_name(relid)),
				 errhint("Invalidating needs ownership of the relation or INSERT, UPDATE, DELETE or TRUNCATE privilege on it.")));
	if (relkind == RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot invalidate view \"%s\"", get_rel_name(relid)),
				 errhint("Invalidate the tables the view reads.")));
	touch_relation_tree(relid);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cache_invalidate_tag);

Datum
cache_invalidate_tag(PG_FUNCTION_ARGS)
{
	char *tag = text_to_cstring(PG_GETARG_TEXT_PP(0));

	refuse_in_recovery();
	if (tag[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tags must be non-empty")));
	touch_key(KeyTagGenName(tag));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cache_flush);

Datum
cache_flush(PG_FUNCTION_ARGS)
{
	refuse_in_recovery();
	touch_key(KeyDatabaseGenName());
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cache_purge);

/*
 * Delete this database's entries: the local tier's, then the store's SCAN +
 * UNLINK batches, never KEYS.  Raises when Redis fails, saying how many
 * were deleted before.
 */
Datum
cache_purge(PG_FUNCTION_ARGS)
{
	char *pattern = KeyEntryPattern();
	StorePurgeBatch b;
	int64 deleted = 0;

	/* the local tier's first: it needs no Redis */
	L1DeleteDatabase();
	memset(&b, 0, sizeof(b));
	strlcpy(b.cursor, "0", sizeof(b.cursor));
	do
	{
		CHECK_FOR_INTERRUPTS();
		if (StorePurge(pattern, &b) != STORE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not purge the cache: %s", b.problem),
					 errdetail("%lld entries were deleted before.", (long long) deleted),
					 b.unlink_failed ?
						 errhint("The Redis user of cache_ext.redis_url needs +scan and +unlink on the key prefix.") :
						 0));
		deleted += b.deleted;
	} while (!b.done);

	PG_RETURN_INT64(deleted);
}
