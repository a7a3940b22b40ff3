/*-------------------------------------------------------------------------
 *
 * policies.c
 *	  Per-table TTL policies (docs/rules.md, "Policies per table"):
 *	  cache_policy() sets or removes the policy of a table, and each
 *	  backend's copy of the policies caps the TTL of every call whose plan
 *	  reads a table with one (PolicyCapOptions: cached_query and its forms,
 *	  cache rules and warming through the call pipeline, and cache_explain).
 *
 * Policies live in the extension's table cache_ext_policies (dumped with
 * pg_extension_config_dump), one row per relation, which is stored as
 * regclass: an OID in the database, a qualified name in a dump, so that a
 * restore into other OIDs finds its table again.  An sql_drop event
 * trigger (in the install script) deletes the policy of a dropped
 * relation, so that an OID used again never inherits one.  The statement
 * trigger that the rules table has (cache_ext_rules_changed) sends a
 * relcache invalidation of the table: every backend loads the policies
 * again at its next call after a change commits.
 *
 * State: backend-local: the hash of policies by relation OID in
 * policies_cxt (under CacheMemoryContext), policies_state, policies_relid
 * and any_partitioned, touched only by this backend (the relcache callback
 * only marks them stale).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "catalog_inval.h"
#include "policies.h"
#include "rules.h"
#include "subxact.h"

/* admin.c's cache_invalidate(rel regclass) */
extern PGDLLEXPORT Datum cache_invalidate(PG_FUNCTION_ARGS);

/* the columns of cache_ext_policies, as 0.7 creates it */
enum
{
	PC_REL,
	PC_TTL,
	PC_SET_AT,
	PC_NCOLS
};

static const Oid policy_column_types[PC_NCOLS] = {
	REGCLASSOID, INTERVALOID, TIMESTAMPTZOID};

typedef enum PoliciesState
{
	POLICIES_UNKNOWN, /* to be loaded at the next call */
	POLICIES_NONE,	  /* the extension is not in this database (or its
					   * table could not be read) */
	POLICIES_LOADED	  /* policies_hash, NULL when there are none */
} PoliciesState;

typedef struct PolicyEntry
{
	Oid relid; /* the key */
	int64 ttl_ms;
} PolicyEntry;

static PoliciesState policies_state = POLICIES_UNKNOWN;
static uint64 inval_count = 0;
static Oid policies_relid = InvalidOid;
static HTAB *policies_hash = NULL;
static MemoryContext policies_cxt = NULL;
static bool callback_registered = false;

/* some policy is on a partitioned table: partitions look up their ancestors */
static bool any_partitioned = false;

/*
 * A relation changed: the policies are loaded again when it is their
 * table, on a reset, and while the extension is missing (it may just have
 * been created).  An empty table is loaded: other relations' changes
 * then cost nothing here.
 */
static void
policies_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == policies_relid ||
		policies_state == POLICIES_NONE)
	{
		policies_state = POLICIES_UNKNOWN;
		inval_count++;
	}
}

/* Read the policies table (relid) into policies_hash (which exists). */
static void
load_fn(void *arg)
{
	Oid relid = *(Oid *) arg;
	Relation rel = table_open(relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	Snapshot snap;
	TableScanDesc scan;
	HeapTuple tup;

	if (desc->natts != PC_NCOLS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s is not as cache_ext 0.7 made it", POLICIES_TABLE)));
	for (int i = 0; i < PC_NCOLS; i++)
		if (TupleDescAttr(desc, i)->atttypid != policy_column_types[i] ||
			TupleDescAttr(desc, i)->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s is not as cache_ext 0.7 made it", POLICIES_TABLE)));
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Datum v[PC_NCOLS];
		bool n[PC_NCOLS];
		Oid target;
		int64 ms;
		PolicyEntry *e;

		heap_deform_tuple(tup, desc, v, n);
		if (n[PC_REL] || n[PC_TTL])
			continue;
		target = DatumGetObjectId(v[PC_REL]);
		ms = RulesTtlMs(DatumGetIntervalP(v[PC_TTL]), false);
		if (ms < 0)
			continue; /* written by hand out of bounds: ignored */
		e = hash_search(policies_hash, &target, HASH_ENTER, NULL);
		e->ttl_ms = ms;
		if (get_rel_relkind(target) == RELKIND_PARTITIONED_TABLE)
			any_partitioned = true;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

/*
 * Load the policies of this database into policies_hash.  Never raises
 * (but for a cancel): a table that cannot be read means no policies, and
 * every call keeps its own TTL.
 */
static void
policies_load(void)
{
	uint64 seen = inval_count;

	if (policies_cxt != NULL)
		MemoryContextReset(policies_cxt);
	policies_hash = NULL;
	any_partitioned = false;
	policies_state = POLICIES_NONE;
	policies_relid = ExtensionTable(POLICIES_TABLE);
	if (!OidIsValid(policies_relid))
		return;
	if (!LoadTableHash(&policies_cxt, "cache_ext policies", &policies_hash,
					   sizeof(Oid), sizeof(PolicyEntry), load_fn, &policies_relid,
					   "cache policies",
					   "Calls keep their own TTL until " POLICIES_TABLE " changes."))
		return;
	policies_state = POLICIES_LOADED;
	/* changed while loading: load again at the next call */
	if (seen != inval_count)
		policies_state = POLICIES_UNKNOWN;
}

/* The policy of relid, or -1; *by is set when it is smaller than best. */
static int64
policy_of(Oid relid, int64 best, Oid *by)
{
	PolicyEntry *e = hash_search(policies_hash, &relid, HASH_FIND, NULL);

	if (e == NULL || (best >= 0 && e->ttl_ms >= best))
		return best;
	*by = relid;
	return e->ttl_ms;
}

/*
 * The smallest TTL, in milliseconds, of the policies on the relations of
 * relids and more_relids, and on the partitioned tables a partition among
 * them belongs to; -1 when none has one.  *by (when not NULL) is set to
 * the relation whose policy it is.  Loads the policies when they changed;
 * never raises but for a cancel.
 */
int64
PolicyTtlMs(List *relids, List *more_relids, Oid *by)
{
	int64 best = -1;
	Oid best_rel = InvalidOid;
	List *lists[2];

	if (!callback_registered)
	{
		CatalogInvalOnRelcache(policies_relcache_callback);
		callback_registered = true;
	}
	if (by != NULL)
		*by = InvalidOid;

	/*
	 * A serializable transaction's scan of the table would take a predicate
	 * lock; its calls bypass the cache anyway.
	 */
	if (policies_state == POLICIES_UNKNOWN && IsTransactionState() &&
		OidIsValid(MyDatabaseId) && !IsolationIsSerializable())
		policies_load();
	if (policies_state != POLICIES_LOADED || policies_hash == NULL)
		return -1;
	lists[0] = relids;
	lists[1] = more_relids;
	for (int i = 0; i < 2; i++)
	{
		ListCell *lc;

		foreach(lc, lists[i])
		{
			Oid relid = lfirst_oid(lc);

			best = policy_of(relid, best, &best_rel);
			if (any_partitioned && get_rel_relispartition(relid))
			{
				List *ancestors = get_partition_ancestors(relid);
				ListCell *lc2;

				foreach(lc2, ancestors)
					best = policy_of(lfirst_oid(lc2), best, &best_rel);
				list_free(ancestors);
			}
		}
	}
	if (by != NULL)
		*by = best_rel;
	return best;
}

/*
 * The options a call of pq runs under: opts, or a copy in *buf whose TTL
 * the policies of the relations it reads (its plan's, and those it names
 * with depends_on) lower.  *by (when not NULL) is set to the relation
 * whose policy capped it, or InvalidOid.
 */
const CallOptions *
PolicyCapOptions(const PreparedQuery *pq, const CallOptions *opts,
				 CallOptions *buf, Oid *by)
{
	Oid rel;
	int64 ms = PolicyTtlMs(pq->deps.relids, opts->depends_on, &rel);

	if (by != NULL)
		*by = InvalidOid;
	if (ms < 0 || ms >= opts->ttl_ms)
		return opts;
	*buf = *opts;
	buf->ttl_ms = ms;
	if (by != NULL)
		*by = rel;
	return buf;
}

/*
 * The relation a policy may be set on: a permanent table, partitioned
 * table or materialized view of the user's, which the current role owns.
 * Raises otherwise.
 */
static void
check_policy_relation(Oid relid)
{
	char relkind = get_rel_relkind(relid);
	char *name = get_rel_name(relid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot set a cache policy on \"%s\"", name),
				 errdetail("Cache policies are set on tables, partitioned tables and materialized views."),
				 relkind == RELKIND_VIEW ?
					 errhint("Set the policy on the tables the view reads.") :
					 0));
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot set a cache policy on temporary table \"%s\"", name),
				 errdetail("Results that read temporary tables are never cached.")));
	if (relid < FirstNormalObjectId)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot set a cache policy on system catalog \"%s\"", name),
				 errdetail("Results that read system catalogs are never cached.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), name);
}

PG_FUNCTION_INFO_V1(cache_policy);

/*
 * cache_policy(rel regclass, ttl interval DEFAULT NULL): results that read
 * rel get at most ttl from now on; a NULL ttl removes the policy.  Only
 * rel's owner (or a superuser) may.  A new or lowered policy invalidates
 * the results that read rel (as cache_invalidate does, at commit), so that
 * none stored under a longer TTL is served past the new one.  Other
 * backends apply the change at their next call after it commits.
 */
Datum
cache_policy(PG_FUNCTION_ARGS)
{
	Oid table = ExtensionTable(POLICIES_TABLE);
	Oid relid;
	const char *nsp;
	Oid types[2] = {REGCLASSOID, INTERVALOID};
	Datum values[2];
	int64 old_ms = -1;
	int64 new_ms = -1;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the relation of a cache policy must not be null")));
	if (!OidIsValid(table))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s of extension cache_ext is missing", POLICIES_TABLE),
				 errhint("Run ALTER EXTENSION cache_ext UPDATE.")));
	relid = PG_GETARG_OID(0);
	/* not dropped before this transaction ends: its event trigger would miss the row */
	LockRelationOid(relid, AccessShareLock);
	check_policy_relation(relid);
	if (!PG_ARGISNULL(1))
		new_ms = RulesTtlMs(PG_GETARG_INTERVAL_P(1), true);

	nsp = quote_identifier(get_namespace_name(get_rel_namespace(table)));
	values[0] = ObjectIdGetDatum(relid);
	if (RunAsTableOwner(table,
						psprintf("SELECT ttl FROM %s.%s WHERE rel = $1", nsp, POLICIES_TABLE),
						1, types, values, " ") > 0)
	{
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			old_ms = RulesTtlMs(DatumGetIntervalP(d), false);
	}
	SPI_finish();
	if (PG_ARGISNULL(1))
		(void) RunAsTableOwner(table,
							   psprintf("DELETE FROM %s.%s WHERE rel = $1", nsp, POLICIES_TABLE),
							   1, types, values, " ");
	else
	{
		values[1] = PG_GETARG_DATUM(1);
		(void) RunAsTableOwner(table,
							   psprintf("INSERT INTO %s.%s AS p (rel, ttl) VALUES ($1, $2) "
										"ON CONFLICT (rel) DO UPDATE SET ttl = excluded.ttl, set_at = excluded.set_at",
										nsp, POLICIES_TABLE),
							   2, types, values, "  ");
	}
	SPI_finish();
	if (new_ms >= 0 && (old_ms < 0 || new_ms < old_ms))
		(void) DirectFunctionCall1(cache_invalidate, ObjectIdGetDatum(relid));
	PG_RETURN_VOID();
}
