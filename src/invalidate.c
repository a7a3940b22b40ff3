/*-------------------------------------------------------------------------
 *
 * invalidate.c
 *	  Commit-ordered invalidation with generations (DESIGN.md §3).
 *
 * Writers: the extension's trigger function (statement-level AFTER
 * INSERT/UPDATE/DELETE and TRUNCATE triggers created ENABLE ALWAYS, and a
 * row-level one, which fires during logical-replication apply and, on a
 * partition or inheritance child, always: a statement on the parent fires
 * only the child's row triggers), a ProcessUtility hook for DDL and the SQL
 * functions cache_invalidate*, cache_flush add the generation keys they
 * touch to a per-transaction set.  Each key remembers the subtransaction
 * level that added it, so a rolled-back subtransaction bumps nothing.
 *
 * The DDL hook classifies each utility statement without raising (names
 * are looked up with missing_ok): ALTER TABLE and friends bump the
 * relations, VACUUM FULL and CLUSTER what they rewrite, GRANT/REVOKE,
 * ALTER DOMAIN / TEXT SEARCH / COLLATION, ownership changes the database,
 * role and membership changes the server generation of every Redis target.
 * Its own catalog work (installing triggers on a new partition, ...) runs
 * in a subtransaction: a failure there warns and bumps more, and never
 * fails the user's statement.
 *
 * After XACT_EVENT_COMMIT (the commit is visible to other sessions), once
 * the transaction's locks are released and before COMMIT returns, the set
 * is sent as one MSET of a fresh random value, with
 * cache_ext.invalidation_timeout; if that fails the keys go to the outbox
 * of this backend's Redis target (outbox.c), and hits wait for it.
 *
 * Prepared transactions: at PREPARE the set is written, by direct heap
 * access (no SQL, no name resolved through the caller's search_path), to
 * the extension's table cache_ext_prepared under the transaction's GID, so
 * it commits, survives restarts and rolls back with it; COMMIT PREPARED, in
 * whichever session runs it, reads and deletes the rows of that GID and
 * bumps their keys after the commit is visible.
 *
 * Which relation's generation stands for a relation read by a query: the
 * topmost tracked ancestor (a partition or inheritance child maps to its
 * tracked parent), else the relation itself.  A write bumps the relation's
 * own generation and those of all its tracked ancestors.
 *
 * State: the per-transaction set and a cache of relations' tracking are
 * backend-local (the cache is dropped on any relcache invalidation); the
 * outbox and the server-wide state are in shared memory (outbox.c).
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
#include "store/store.h"

int			cache_ext_untracked = UNTRACKED_ALLOW;
int			cache_ext_invalidation_timeout = 250;
int			cache_ext_max_keys_per_xact = 100;

/* ---- per-transaction set of touched generation keys ---- */

typedef struct TouchedKey
{
	char		key[INVAL_KEY_LEN];
	int			level;			/* subtransaction nesting level that added it */
} TouchedKey;

static HTAB *touched = NULL;
static MemoryContext touched_cxt = NULL;

/* key scopes added per scope relation in this transaction (escalation) */
typedef struct KeyCount
{
	Oid			scope;
	int			count;
	bool		escalated;
} KeyCount;

static HTAB *key_counts = NULL;

/* the trigger's shortcut: this relation was noted at this level already */
static Oid	last_relid = InvalidOid;
static int	last_level = 0;

/* the GID of the PREPARE TRANSACTION being run */
static char *prepare_gid = NULL;

/* ---- relations' tracking, cached per backend ---- */

#define MAX_ROOTS 8

typedef struct RelInfo
{
	Oid			relid;
	RelCoverage coverage;
	Oid			scope;			/* whose generation stands for it in entries */
	const char *why;			/* when untracked */
	int			nbump;
	Oid			bump[MAX_ROOTS + 1];	/* itself and its tracked ancestors */
	int			nkeys;			/* key columns of the scope relation */
	NameData	keys[INVAL_MAX_KEY_COLUMNS];
} RelInfo;

static HTAB *rel_infos = NULL;
static bool rel_infos_stale = false;
static Oid	trigger_func = InvalidOid;

static ProcessUtility_hook_type prev_utility_hook = NULL;

static bool touch_key(const char *key);

/* ================================================================
 * Which relations are tracked
 * ================================================================
 */

/* incremented whenever what is known of relations' tracking may change */
static uint64 tracking_epoch = 1;

static void
rel_infos_invalidate(Datum arg, Oid relid)
{
	rel_infos_stale = true;
	tracking_epoch++;
}

/*
 * A number that changes whenever any relation's tracking may have changed
 * (any relcache invalidation): analyses that used InvalRelationCoverage or
 * InvalKeyColumn are redone when it differs from the one they were made
 * under.  Tracking an ancestor changes a child's scope without touching
 * the child's relcache entry, so a plan over the child is not rebuilt.
 */
uint64
InvalTrackingEpoch(void)
{
	return tracking_epoch;
}

/*
 * The schema this extension is installed in, or InvalidOid when it is not
 * installed in this database.  Read from pg_extension by the extension's
 * OID: no name is resolved through the caller's search_path.
 */
static Oid
extension_namespace(Oid *extoid)
{
	Oid			ext = get_extension_oid("cache_ext", true);
	Oid			nsp = InvalidOid;
	Relation	extrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	if (extoid)
		*extoid = ext;
	if (!OidIsValid(ext))
		return InvalidOid;
	extrel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ext));
	scan = systable_beginscan(extrel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(extrel, AccessShareLock);
	return nsp;
}

/* The OID of this extension's trigger function, or InvalidOid. */
static Oid
get_trigger_func(void)
{
	if (!OidIsValid(trigger_func))
	{
		Oid			nsp = extension_namespace(NULL);
		char	   *nspname;

		if (!OidIsValid(nsp))
			return InvalidOid;
		nspname = get_namespace_name(nsp);
		if (nspname == NULL)
			return InvalidOid;
		/* qualified: resolved in the extension's schema only */
		trigger_func = LookupFuncName(list_make2(makeString(nspname),
												 makeString("cache_ext_trigger")),
									  0, NULL, true);
	}
	return trigger_func;
}

#define DML_EVENTS (TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE | TRIGGER_TYPE_DELETE)

typedef struct Tracking
{
	bool		any;			/* has a trigger of ours */
	bool		root;			/* ... created on it, not cloned from a parent */
	bool		covered;		/* every write path fires one */
	const char *why;			/* when not covered */
	int			nkeys;			/* key columns: the arguments of its row trigger */
	NameData	keys[INVAL_MAX_KEY_COLUMNS];
} Tracking;

/*
 * Whether tg, a trigger on our function, fires on every event it is
 * declared for: no WHEN condition, no UPDATE OF column list, not a
 * constraint trigger (deferrable, fired at commit or SET CONSTRAINTS), no
 * transition tables (the trigger needs none; a hand-made one is suspect).
 * Anything else does not count as coverage, whoever created it.
 */
static bool
fires_unconditionally(const Trigger *tg)
{
	return tg->tgqual == NULL && tg->tgnattr == 0 &&
		!OidIsValid(tg->tgconstraint) && !tg->tgdeferrable &&
		!tg->tginitdeferred && tg->tgoldtable == NULL &&
		tg->tgnewtable == NULL;
}

/*
 * Read rel's triggers.  A relation is covered when, of this extension's
 * triggers, an ENABLE ALWAYS one fires after every INSERT/UPDATE/DELETE
 * statement, an ENABLE ALWAYS one for TRUNCATE, a row-level ENABLE ALWAYS
 * or REPLICA one for logical-replication apply, and the write is known
 * while the writing statement still runs (a cached_query inside it must
 * bypass): a BEFORE statement trigger, or row-level AFTER events, which
 * are queued as rows change (AfterTriggerPendingOnRel).  Only triggers
 * that fire unconditionally count (fires_unconditionally).
 */
static void
read_tracking(Relation rel, Tracking *t)
{
	TriggerDesc *td = rel->trigdesc;
	Oid			func = get_trigger_func();
	bool		dml = false,
				early = false,
				truncate = false,
				apply = false,
				disabled = false,
				conditional = false;

	memset(t, 0, sizeof(*t));
	if (td != NULL && OidIsValid(func))
	{
		for (int i = 0; i < td->numtriggers; i++)
		{
			Trigger    *tg = &td->triggers[i];
			bool		always = tg->tgenabled == TRIGGER_FIRES_ALWAYS;

			if (tg->tgfoid != func)
				continue;
			t->any = true;
			if (!fires_unconditionally(tg))
			{
				conditional = true;
				continue;
			}
			if ((tg->tgtype & DML_EVENTS) == DML_EVENTS &&
				TRIGGER_FOR_BEFORE(tg->tgtype))
			{
				if (always && !TRIGGER_FOR_ROW(tg->tgtype))
					early = true;
			}
			else if ((tg->tgtype & DML_EVENTS) == DML_EVENTS)
			{
				if (!tg->tgisclone)
					t->root = true;
				if (always)
					dml = true;
				if (always && TRIGGER_FOR_ROW(tg->tgtype))
				{
					early = true;
					/* key-level tracking: the key columns are its arguments */
					if (tg->tgnargs > 0 && tg->tgnargs <= INVAL_MAX_KEY_COLUMNS)
					{
						t->nkeys = tg->tgnargs;
						for (int k = 0; k < tg->tgnargs; k++)
							namestrcpy(&t->keys[k], tg->tgargs[k]);
					}
				}
				if (TRIGGER_FOR_ROW(tg->tgtype) &&
					(always || tg->tgenabled == TRIGGER_FIRES_ON_REPLICA))
					apply = true;
			}
			if (TRIGGER_FOR_TRUNCATE(tg->tgtype) && always)
				truncate = true;
			if (tg->tgenabled != TRIGGER_FIRES_ALWAYS &&
				!(TRIGGER_FOR_ROW(tg->tgtype) && tg->tgenabled == TRIGGER_FIRES_ON_REPLICA))
				disabled = true;
		}
	}
	t->covered = dml && early && truncate && apply;
	if (t->covered)
		return;
	if (!t->any)
		t->why = "untracked";
	else if (disabled)
		t->why = "tracking trigger disabled";
	else if (conditional)
		t->why = "tracking trigger conditional";
	else
		t->why = "tracking trigger missing";
}

static List *
direct_parents(Oid relid)
{
	Relation	inh;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *parents = NIL;

	inh = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(inh, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	while ((tup = systable_getnext(scan)) != NULL)
		parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tup))->inhparent);
	systable_endscan(scan);
	table_close(inh, AccessShareLock);
	return parents;
}

static void
compute_rel_info(RelInfo *ri)
{
	Oid			relid = ri->relid;
	char		relkind = get_rel_relkind(relid);
	Relation	rel;
	Tracking	t;
	List	   *level;
	int			depth = 0;
	int			scope_depth = -1;

	ri->coverage = REL_UNTRACKED;
	ri->scope = relid;
	ri->why = "untracked";
	ri->nkeys = 0;
	ri->nbump = 0;
	ri->bump[ri->nbump++] = relid;

	switch (relkind)
	{
		case '\0':
			ri->why = "dropped";
			return;
		case RELKIND_VIEW:
			ri->coverage = REL_IGNORED;
			return;
		case RELKIND_MATVIEW:
			/* changed only by REFRESH and DDL, which the utility hook sees */
			if (InvalShmemReady())
				ri->coverage = REL_TRACKED;
			else
				ri->why = "materialized view, cache_ext not preloaded";
			return;
		case RELKIND_FOREIGN_TABLE:
			ri->why = "foreign table";
			return;
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
			break;
		default:
			ri->why = "not a table";
			return;
	}

	rel = RelationIdGetRelation(relid);
	if (rel == NULL)
	{
		ri->why = "dropped";
		return;
	}
	read_tracking(rel, &t);
	RelationClose(rel);
	ri->nkeys = 0;
	if (t.covered)
	{
		ri->coverage = REL_TRACKED;
		ri->why = NULL;
		if (t.root)
			scope_depth = 0;
		ri->nkeys = t.nkeys;
		memcpy(ri->keys, t.keys, sizeof(t.keys));
	}
	else
		ri->why = t.why;

	/* tracked ancestors, nearest first; the topmost stands for the rest */
	level = direct_parents(relid);
	while (level != NIL && depth < 32)
	{
		List	   *next = NIL;
		ListCell   *lc;

		depth++;
		foreach(lc, level)
		{
			Oid			anc = lfirst_oid(lc);
			Relation	arel = RelationIdGetRelation(anc);

			if (arel == NULL)
				continue;
			read_tracking(arel, &t);
			RelationClose(arel);
			if (t.root && ri->nbump < lengthof(ri->bump))
			{
				ri->bump[ri->nbump++] = anc;
				if (ri->coverage == REL_TRACKED && depth > scope_depth)
				{
					ri->scope = anc;
					scope_depth = depth;
					ri->nkeys = t.nkeys;
					memcpy(ri->keys, t.keys, sizeof(t.keys));
				}
			}
			next = list_concat(next, direct_parents(anc));
		}
		list_free(level);
		level = next;
	}
	list_free(level);
}

static RelInfo *
get_rel_info(Oid relid)
{
	RelInfo    *ri;
	bool		found;

	if (rel_infos_stale && rel_infos != NULL)
	{
		hash_destroy(rel_infos);
		rel_infos = NULL;
		trigger_func = InvalidOid;
	}
	rel_infos_stale = false;
	if (rel_infos == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelInfo);
		ctl.hcxt = CacheMemoryContext;
		rel_infos = hash_create("cache_ext relations", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	ri = hash_search(rel_infos, &relid, HASH_ENTER, &found);
	if (!found)
	{
		PG_TRY();
		{
			compute_rel_info(ri);
		}
		PG_CATCH();
		{
			hash_search(rel_infos, &relid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return ri;
}

RelCoverage
InvalRelationCoverage(Oid relid, Oid *scope, const char **why)
{
	RelInfo    *ri = get_rel_info(relid);

	*scope = ri->scope;
	*why = ri->why;
	return ri->coverage;
}

bool
InvalKeyColumn(Oid relid, const char *colname, Oid *scope)
{
	RelInfo    *ri = get_rel_info(relid);

	*scope = ri->scope;
	if (ri->coverage != REL_TRACKED)
		return false;
	for (int i = 0; i < ri->nkeys; i++)
		if (strcmp(NameStr(ri->keys[i]), colname) == 0)
			return true;
	return false;
}

/*
 * Key values are compared by the equality of their type's default btree
 * operator family: integers (int2, int4 and int8 compare across types, so
 * all become int64), text and varchar (byte equality under a deterministic
 * collation), uuid.
 */
bool
InvalKeyTypeSupported(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case TEXTOID:
		case VARCHAROID:
		case UUIDOID:
			return true;
		default:
			return false;
	}
}

static bool
key_material(Oid typid, Datum value, StringInfo m)
{
	int64		i;

	switch (getBaseType(typid))
	{
		case INT2OID:
			i = DatumGetInt16(value);
			break;
		case INT4OID:
			i = DatumGetInt32(value);
			break;
		case INT8OID:
			i = DatumGetInt64(value);
			break;
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(value);

				KeyAddString(m, "text");
				KeyAddField(m, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				return true;
			}
		case UUIDOID:
			KeyAddString(m, "uuid");
			KeyAddField(m, DatumGetUUIDP(value)->data, UUID_LEN);
			return true;
		default:
			return false;
	}
	KeyAddString(m, "integer");
	KeyAddField(m, &i, sizeof(i));
	return true;
}

char *
InvalKeyValueName(Oid scope, const char *colname, Oid typid, Datum value)
{
	StringInfoData m;
	char	   *name;

	initStringInfo(&m);
	if (!key_material(typid, value, &m))
	{
		pfree(m.data);
		return NULL;
	}
	name = KeyKeyGenName(scope, colname, &m);
	pfree(m.data);
	return name;
}

/* ================================================================
 * The per-transaction set
 * ================================================================
 */

/* Add key to this transaction's set; true when it was not there yet. */
static bool
touch_key(const char *key)
{
	TouchedKey *tk;
	bool		found;
	char		k[INVAL_KEY_LEN];

	if (strlen(key) >= INVAL_KEY_LEN)
		elog(ERROR, "cache_ext generation key too long: \"%s\"", key);
	if (touched == NULL)
	{
		HASHCTL		ctl;

		if (touched_cxt == NULL)
			touched_cxt = AllocSetContextCreate(TopMemoryContext,
												"cache_ext touched scopes",
												ALLOCSET_SMALL_SIZES);
		ctl.keysize = INVAL_KEY_LEN;
		ctl.entrysize = sizeof(TouchedKey);
		ctl.hcxt = touched_cxt;
		touched = hash_create("cache_ext touched scopes", 16, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(k, 0, sizeof(k));
	strlcpy(k, key, sizeof(k));
	tk = hash_search(touched, k, HASH_ENTER, &found);
	if (!found)
		tk->level = GetCurrentTransactionNestLevel();
	return !found;
}

/*
 * A write to relid: its own generation and its tracked ancestors'.  A
 * structural change (TRUNCATE, DDL, too many keys) also bumps the
 * generations that key-level entries depend on.
 */
static void
touch_relation(Oid relid, bool structural)
{
	RelInfo    *ri = get_rel_info(relid);

	for (int i = 0; i < ri->nbump; i++)
	{
		touch_key(KeyTableGenName(ri->bump[i]));
		if (structural)
			touch_key(KeyTableDdlGenName(ri->bump[i]));
	}
}

static List *relation_tree_keys(Oid relid, List *keys);

/* The generation keys a write to relid bumps: its own, its tracked ancestors'. */
static List *
relation_keys(Oid relid, List *keys)
{
	RelInfo    *ri = get_rel_info(relid);

	for (int i = 0; i < ri->nbump; i++)
	{
		keys = lappend(keys, KeyTableGenName(ri->bump[i]));
		keys = lappend(keys, KeyTableDdlGenName(ri->bump[i]));
	}
	return keys;
}

/* DDL on relid changes it and every partition or child under it. */
static List *
relation_tree_keys(Oid relid, List *keys)
{
	List	   *all;
	ListCell   *lc;

	if (get_rel_relkind(relid) == '\0')
		return keys;
	all = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, all)
		keys = relation_keys(lfirst_oid(lc), keys);
	list_free(all);
	return keys;
}

static void
touch_relation_tree(Oid relid)
{
	ListCell   *lc;
	List	   *keys = relation_tree_keys(relid, NIL);

	foreach(lc, keys)
		touch_key((char *) lfirst(lc));
}

bool
InvalTouchedAny(void)
{
	return touched != NULL && hash_get_num_entries(touched) > 0;
}

bool
InvalScopeTouched(const char *key)
{
	char		k[INVAL_KEY_LEN];

	if (!InvalTouchedAny())
		return false;
	memset(k, 0, sizeof(k));
	strlcpy(k, key, sizeof(k));
	return hash_search(touched, k, HASH_FIND, NULL) != NULL;
}

static char **
touched_keys(int *n)
{
	HASH_SEQ_STATUS seq;
	TouchedKey *tk;
	char	  **keys;
	int			i = 0;

	*n = touched ? hash_get_num_entries(touched) : 0;
	keys = MemoryContextAlloc(touched_cxt ? touched_cxt : TopMemoryContext,
							  sizeof(char *) * Max(*n, 1));
	if (*n == 0)
		return keys;
	hash_seq_init(&seq, touched);
	while ((tk = hash_seq_search(&seq)) != NULL)
		keys[i++] = tk->key;
	return keys;
}

static void
forget_touched(void)
{
	if (touched != NULL)
	{
		hash_destroy(touched);
		touched = NULL;
	}
	OutboxCommitEnd();
	key_counts = NULL;			/* it lives in touched_cxt */
	if (touched_cxt != NULL)
		MemoryContextReset(touched_cxt);
	last_relid = InvalidOid;
	last_level = 0;
}

/*
 * After the commit is visible: one MSET, or the outbox.  Never throws: an
 * error here could not abort the transaction anymore.
 */
static void
bump_at_commit(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	char	  **keys = NULL;
	int			n = 0;
	volatile bool ok = false;

	PG_TRY();
	{
		keys = touched_keys(&n);
		ok = OutboxSendBumps(keys, n, cache_ext_invalidation_timeout);
		if (!ok && InvalShmemReady())
			OutboxAdd(keys, n);
		else if (!ok)
			ereport(WARNING,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("cache_ext could not deliver the invalidations of this transaction"),
					 errdetail("cache_ext is not in shared_preload_libraries, so it cannot keep them for later; it serves no hits for tracked tables in this configuration."),
					 errhint("Add cache_ext to shared_preload_libraries.")));
		ok = true;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();

	if (!ok && InvalShmemReady())
		OutboxRequestServerBump();	/* could not even record them */

	/*
	 * A change to shared catalogs (roles, memberships, database or
	 * tablespace privileges) reaches every database, and so every Redis
	 * target, not only this backend's: ask for the server generation of all
	 * of them, now that the commit is visible.
	 */
	else if (InvalShmemReady() && InvalScopeTouched(KeyServerGenName()))
		OutboxRequestServerBump();
}

/*
 * The table cache_ext_prepared, opened with RowExclusiveLock (kept until
 * the end of the transaction), or NULL when the extension is not installed
 * in this database.  Found by OID (the extension's schema, then the table
 * in it) and checked to be the extension's own (gid text, keys text[])
 * heap without indexes, so that the rows can be written and read with
 * direct heap access: nothing here runs SQL, parses, resolves a name
 * through search_path or calls an operator or a function a role could
 * have defined.  Raises when the table is not as 0.3 made it.
 */
static Relation
open_prepared_table(void)
{
	Oid			ext;
	Oid			nsp = extension_namespace(&ext);
	Oid			relid;
	Relation	rel;
	TupleDesc	desc;
	List	   *indexes;

	if (!OidIsValid(nsp))
		return NULL;
	relid = get_relname_relid("cache_ext_prepared", nsp);
	if (!OidIsValid(relid) || getExtensionOfObject(RelationRelationId, relid) != ext)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table cache_ext_prepared of extension cache_ext is missing"),
				 errhint("Reinstall the extension.")));
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	indexes = RelationGetIndexList(rel);
	if (rel->rd_rel->relkind != RELKIND_RELATION || desc->natts != 2 ||
		TupleDescAttr(desc, 0)->atttypid != TEXTOID ||
		TupleDescAttr(desc, 0)->attisdropped ||
		TupleDescAttr(desc, 1)->atttypid != TEXTARRAYOID ||
		TupleDescAttr(desc, 1)->attisdropped ||
		indexes != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table cache_ext_prepared is not as cache_ext 0.3 expects"),
				 errdetail("It must be a table (gid text, keys text[]) without indexes."),
				 errhint("Run ALTER EXTENSION cache_ext UPDATE.")));
	list_free(indexes);
	return rel;
}

/*
 * PREPARE TRANSACTION: the keys are written to the table cache_ext_prepared
 * by the transaction being prepared, so they become visible exactly when
 * it commits, survive restarts with it, and vanish if it is rolled back
 * (also when PostgreSQL refuses the GID as in use, after this ran).
 * COMMIT PREPARED, in whichever session runs it, reads and deletes them
 * and bumps them.  Nothing depends on Redis at PREPARE.  The row is
 * inserted with simple_heap_insert (the table has no index, so none can
 * make the insert wait on another prepared transaction).
 */
static void
save_prepared(void)
{
	char	  **keys;
	int			n;
	Datum	   *elems;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	Relation	rel;
	HeapTuple	tup;

	keys = touched_keys(&n);
	if (n == 0)
		return;
	/*
	 * Not preloaded: no outbox, and the keys may include tags and
	 * untracked tables whose results this server does serve.  Refuse, as
	 * 0.2 did (documented: two-phase commit needs the preloaded library).
	 */
	if (!InvalShmemReady())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot prepare a transaction that changed tables tracked by cache_ext"),
				 errdetail("cache_ext must be in shared_preload_libraries to carry invalidations across PREPARE TRANSACTION."),
				 errhint("Add cache_ext to shared_preload_libraries, or commit without two-phase commit.")));
	if (prepare_gid == NULL || (rel = open_prepared_table()) == NULL)
	{
		/*
		 * Nowhere to carry them (a role change in a database without the
		 * extension): never fail the PREPARE; invalidate everything now.
		 */
		OutboxRequestServerBump();
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cache_ext cannot carry the invalidations of this transaction across PREPARE TRANSACTION"),
				 errdetail("The extension is not installed in this database. Every cached result of this server is invalidated now, but results computed before COMMIT PREPARED may be stored again."),
				 errhint("Commit changes of roles without two-phase commit, or run cache_flush() after COMMIT PREPARED.")));
		return;
	}
	elems = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(keys[i]);
	values[0] = CStringGetTextDatum(prepare_gid);
	values[1] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	simple_heap_insert(rel, tup);
	heap_freetuple(tup);
	table_close(rel, NoLock);
}

/*
 * The keys recorded for gid, from every row with that GID (a row left
 * behind by an earlier transaction of the same GID, whose COMMIT PREPARED
 * could not delete it, is bumped again: harmless), and delete those rows.
 * The scan uses a snapshot taken now, so that the prepared transaction,
 * committed just before, is visible; GIDs are compared byte for byte.
 * Returns the keys (palloc'd in cxt) and their number in *n.
 */
static char **
take_prepared(const char *gid, MemoryContext cxt, int *n)
{
	Relation	rel = open_prepared_table();
	TupleDesc	desc;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tup;
	size_t		gidlen = strlen(gid);
	List	   *found = NIL;
	char	  **keys;
	ListCell   *lc;
	int			i = 0;

	*n = 0;
	if (rel == NULL)
		return NULL;
	desc = RelationGetDescr(rel);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, desc, &isnull);
		text	   *g;
		Datum	   *elems;
		bool	   *enulls;
		int			nelems;

		if (isnull)
			continue;
		g = DatumGetTextPP(d);
		if (VARSIZE_ANY_EXHDR(g) != gidlen || memcmp(VARDATA_ANY(g), gid, gidlen) != 0)
			continue;
		d = heap_getattr(tup, 2, desc, &isnull);
		if (!isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &enulls, &nelems);
			for (int k = 0; k < nelems; k++)
				if (!enulls[k])
					found = lappend(found, MemoryContextStrdup(cxt, TextDatumGetCString(elems[k])));
		}
		simple_heap_delete(rel, &tup->t_self);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);

	keys = MemoryContextAlloc(cxt, sizeof(char *) * Max(list_length(found), 1));
	foreach(lc, found)
	{
		char	   *k = lfirst(lc);
		bool		dup = false;

		for (int j = 0; j < i && !dup; j++)
			dup = strcmp(keys[j], k) == 0;
		if (!dup)
			keys[i++] = k;
	}
	*n = i;
	return keys;
}

typedef void (*GuardedFn) (void *arg);
static bool run_guarded(GuardedFn fn, void *arg, const char *what);

typedef struct TakePrepared
{
	const char *gid;
	MemoryContext cxt;
	char	  **keys;
	int			n;
} TakePrepared;

static void
take_prepared_guarded(void *arg)
{
	TakePrepared *tp = arg;

	tp->keys = take_prepared(tp->gid, tp->cxt, &tp->n);
}

/*
 * COMMIT PREPARED, after it took effect: bump what it recorded.  Never
 * raises: the transaction is committed, so a failure to read what it
 * touched (in a subtransaction, rolled back) bumps the server generation
 * instead.
 */
static void
finish_prepared(const char *gid)
{
	TakePrepared tp = {gid, CurrentMemoryContext, NULL, 0};

	if (!InvalShmemReady())
		return;
	if (!run_guarded(take_prepared_guarded, &tp,
					 "read the invalidations of the prepared transaction"))
	{
		OutboxRequestServerBump();
		return;
	}
	/* the prepared transaction is committed and visible: bump now */
	if (tp.n > 0 && !OutboxSendBumps(tp.keys, tp.n, cache_ext_invalidation_timeout))
		OutboxAdd(tp.keys, tp.n);
}

/*
 * The commit is visible once XACT_EVENT_COMMIT is called; the bumps are
 * sent a little later, when the transaction's resource owner has released
 * its locks (RESOURCE_RELEASE_AFTER_LOCKS), so that the round trip does not
 * lengthen the time other writers wait for this one's row locks.  Both
 * happen before COMMIT returns to the client.
 */
static bool bump_pending = false;

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			save_prepared();
			break;
		case XACT_EVENT_PRE_COMMIT:
			if (InvalTouchedAny())
				OutboxCommitBegin();
			break;
		case XACT_EVENT_COMMIT:
			if (InvalTouchedAny())
				bump_pending = true;
			else
				forget_touched();
			break;
		case XACT_EVENT_ABORT:
			/* committed, but failed before the bumps went out: send them */
			if (bump_pending)
				bump_at_commit();
			bump_pending = false;
			forget_touched();
			break;
		case XACT_EVENT_PREPARE:
			forget_touched();
			break;
		default:
			break;
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		if (prepare_gid)
			pfree(prepare_gid);
		prepare_gid = NULL;
	}
}

static void
release_callback(ResourceReleasePhase phase, bool isCommit, bool isTopLevel,
				 void *arg)
{
	if (phase != RESOURCE_RELEASE_AFTER_LOCKS || !isCommit || !isTopLevel ||
		!bump_pending)
		return;
	bump_pending = false;
	bump_at_commit();
	forget_touched();
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	TouchedKey *tk;
	int			level;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	last_relid = InvalidOid;
	/* an escalation may have been rolled back: count keys afresh */
	if (event == SUBXACT_EVENT_ABORT_SUB && key_counts != NULL)
	{
		hash_destroy(key_counts);
		key_counts = NULL;
	}
	if (touched == NULL)
		return;
	level = GetCurrentTransactionNestLevel();
	hash_seq_init(&seq, touched);
	while ((tk = hash_seq_search(&seq)) != NULL)
	{
		if (tk->level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			tk->level = level - 1;	/* now the parent's */
		else
			hash_search(touched, tk->key, HASH_REMOVE, NULL);	/* rolled back */
	}
}

/* ================================================================
 * DDL
 * ================================================================
 */

/*
 * The relation rv names, or InvalidOid.  Never raises (the statement
 * reports its own errors, in its own order): no lock, no permission check
 * on the schema; an unqualified name is looked up as the statement will
 * look it up, in the caller's search_path.
 */
/*
 * Whether the row type of relid (or its array type) is the type of a
 * column of some relation: ALTER TABLE relid then changes what those
 * columns' values show (a column dropped and added again reads NULL), so
 * results over other tables change.  Found through pg_depend (a column
 * depends on its type); never raises.
 */
static bool
rowtype_is_used(Oid relid)
{
	Oid			types[2];
	bool		used = false;
	Relation	dep;

	types[0] = get_rel_type_id(relid);
	types[1] = OidIsValid(types[0]) ? get_array_type(types[0]) : InvalidOid;
	if (!OidIsValid(types[0]))
		return false;
	dep = table_open(DependRelationId, AccessShareLock);
	for (int i = 0; i < 2 && !used; i++)
	{
		ScanKeyData key[2];
		SysScanDesc scan;
		HeapTuple	tup;

		if (!OidIsValid(types[i]))
			continue;
		ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(TypeRelationId));
		ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(types[i]));
		scan = systable_beginscan(dep, DependReferenceIndexId, true, NULL, 2, key);
		while (!used && (tup = systable_getnext(scan)) != NULL)
		{
			Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

			/*
			 * A column of a relation, or a domain or another type over it
			 * (not the row type's own array type, which always exists).
			 */
			if (d->deptype == DEPENDENCY_INTERNAL ||
				(d->classid == TypeRelationId && d->objid == types[1]))
				continue;
			if ((d->classid == RelationRelationId && d->objsubid > 0) ||
				d->classid == TypeRelationId)
				used = true;
		}
		systable_endscan(scan);
	}
	table_close(dep, AccessShareLock);
	return used;
}

static Oid
rv_relid(RangeVar *rv)
{
	Oid			nsp;

	if (rv == NULL || rv->relname == NULL)
		return InvalidOid;
	if (rv->catalogname != NULL)
	{
		char	   *db = get_database_name(MyDatabaseId);

		if (db == NULL || strcmp(rv->catalogname, db) != 0)
			return InvalidOid;
	}
	if (rv->schemaname == NULL)
		return RelnameGetRelid(rv->relname);
	nsp = get_namespace_oid(rv->schemaname, true);
	return OidIsValid(nsp) ? get_relname_relid(rv->relname, nsp) : InvalidOid;
}

static void install_triggers(Oid relid, bool partition_of_tracked, List *keys);
static List *inherited_keys(Oid relid);
static bool our_trigger(Oid relid, const char *name, bool *clone);
static void drop_trigger(Oid relid, const char *name);

/* Whether some ancestor of relid is tracked in its own right. */
static bool
has_tracked_ancestor(Oid relid)
{
	RelInfo    *ri = get_rel_info(relid);

	return ri->nbump > 1;
}

/*
 * Run fn(arg) in a subtransaction.  An error in it rolls the subtransaction
 * back and becomes a WARNING naming what (a phrase after "could not"):
 * work cache_ext adds to a user's statement must never make it fail.
 * Query cancel and the like are re-raised.  Returns whether fn completed.
 */
static bool
run_guarded(GuardedFn fn, void *arg, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	if (edata == NULL)
		return true;
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
		edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
		ReThrowError(edata);
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("cache_ext could not %s: %s", what, edata->message),
			 errdetail("The statement went ahead; cache_ext invalidated a wider scope instead.")));
	FreeErrorData(edata);
	return false;
}

/*
 * What a utility statement changes, as far as cached results go (see
 * docs/invalidation.md for the table).  Filled by classify_utility before
 * the statement runs; rewrite statements (VACUUM FULL, CLUSTER) are looked
 * at again after it, since they commit on their own.
 */
typedef struct UtilityEffects
{
	List	   *rels;			/* relations whose rows or meaning change */
	List	   *keys;			/* their generation keys as they stood before */
	List	   *new_children;	/* RangeVars: attached partitions, new children */
	Oid			attach_parent;	/* ATTACH PARTITION: the parent ... */
	Oid			attach_part;	/* ... and the partition */
	bool		database;		/* every result of this database */
	bool		server;			/* every result of this server (shared catalogs) */
	VacuumStmt *vacuum;			/* VACUUM: rows move if FULL */
	ClusterStmt *cluster;		/* CLUSTER: rows move */
	char	   *finish_gid;		/* COMMIT PREPARED */
} UtilityEffects;

/* GRANT/REVOKE on these changes what roles may do in every database. */
static bool
objtype_is_shared(ObjectType t)
{
	return t == OBJECT_DATABASE || t == OBJECT_TABLESPACE ||
		t == OBJECT_PARAMETER_ACL;
}

/*
 * Classify parsetree into e.  Looks names up only with rv_relid, so it
 * never raises.  PREPARE TRANSACTION's GID is remembered here.
 */
static void
classify_utility(Node *parsetree, UtilityEffects *e)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			{
				AlterTableStmt *s = (AlterTableStmt *) parsetree;
				Oid			relid = rv_relid(s->relation);

				e->rels = lappend_oid(e->rels, relid);
				foreach(lc, s->cmds)
				{
					AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

					if (cmd->subtype == AT_AttachPartition ||
						cmd->subtype == AT_DetachPartition ||
						cmd->subtype == AT_DetachPartitionFinalize)
					{
						PartitionCmd *pc = (PartitionCmd *) cmd->def;
						Oid			part = rv_relid(pc->name);

						e->rels = lappend_oid(e->rels, part);
						if (cmd->subtype == AT_AttachPartition)
						{
							e->new_children = lappend(e->new_children, pc->name);
							e->attach_parent = relid;
							e->attach_part = part;
						}
					}
					else if (cmd->subtype == AT_AddInherit ||
							 cmd->subtype == AT_DropInherit)
					{
						e->rels = lappend_oid(e->rels, rv_relid((RangeVar *) cmd->def));
						if (cmd->subtype == AT_AddInherit)
							e->new_children = lappend(e->new_children, s->relation);
					}
				}
				/* ALTER TYPE ... ATTRIBUTE changes the rows of every table using it */
				if (s->objtype == OBJECT_TYPE)
					e->database = true;
				/* ... and so does a table's, when its row type is a column type */
				else if (OidIsValid(relid) && rowtype_is_used(relid))
					e->database = true;
				break;
			}
		case T_AlterEnumStmt:	/* RENAME VALUE changes what rows show */
		case T_AlterTypeStmt:
		case T_AlterDomainStmt: /* constraints, NOT NULL, defaults */
		case T_AlterTSConfigurationStmt:	/* what to_tsvector and @@ return */
		case T_AlterTSDictionaryStmt:
		case T_AlterCollationStmt:	/* REFRESH VERSION: the collation changed */
		case T_AlterOwnerStmt:	/* owners hold privileges, RLS exempts them */
		case T_ReassignOwnedStmt:
		case T_DropOwnedStmt:	/* revokes the role's privileges */
			e->database = true;
			break;
		case T_GrantStmt:
			if (objtype_is_shared(((GrantStmt *) parsetree)->objtype))
				e->server = true;
			else
				e->database = true;
			break;
		case T_GrantRoleStmt:	/* memberships: pg_has_role, policies, SET ROLE */
		case T_DropRoleStmt:
			e->server = true;
			break;
		case T_CreateRoleStmt:
			/* a new role matters only through the memberships it gets */
			foreach(lc, ((CreateRoleStmt *) parsetree)->options)
			{
				const char *opt = lfirst_node(DefElem, lc)->defname;

				if (strcmp(opt, "addroleto") == 0 || strcmp(opt, "rolemembers") == 0 ||
					strcmp(opt, "adminmembers") == 0)
					e->server = true;
			}
			break;
		case T_AlterRoleStmt:
			/* BYPASSRLS, SUPERUSER, INHERIT, members...; not the password */
			foreach(lc, ((AlterRoleStmt *) parsetree)->options)
			{
				const char *opt = lfirst_node(DefElem, lc)->defname;

				if (strcmp(opt, "password") != 0 && strcmp(opt, "validUntil") != 0 &&
					strcmp(opt, "connectionlimit") != 0)
					e->server = true;
			}
			break;
		case T_RenameStmt:
			{
				RenameStmt *r = (RenameStmt *) parsetree;

				/* a composite type's attribute appears in results (row_to_json) */
				if (r->renameType == OBJECT_ATTRIBUTE)
					e->database = true;
				else if (r->renameType == OBJECT_ROLE)
					e->server = true;
				else
					e->rels = lappend_oid(e->rels, rv_relid(r->relation));
				break;
			}
		case T_RefreshMatViewStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((RefreshMatViewStmt *) parsetree)->relation));
			break;
		case T_CreatePolicyStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((CreatePolicyStmt *) parsetree)->table));
			break;
		case T_AlterPolicyStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((AlterPolicyStmt *) parsetree)->table));
			break;
		case T_RuleStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((RuleStmt *) parsetree)->relation));
			break;
		case T_DropStmt:
			{
				DropStmt   *s = (DropStmt *) parsetree;

				if (s->removeType == OBJECT_POLICY || s->removeType == OBJECT_RULE)
				{
					foreach(lc, s->objects)
					{
						List	   *names = list_copy(lfirst(lc));

						/* the last name is the policy's or rule's */
						names = list_truncate(names, list_length(names) - 1);
						if (names != NIL)
							e->rels = lappend_oid(e->rels, rv_relid(makeRangeVarFromNameList(names)));
					}
				}
				break;
			}
		case T_CreateStmt:
			{
				CreateStmt *s = (CreateStmt *) parsetree;

				if (s->partbound != NULL || s->inhRelations != NIL)
					e->new_children = lappend(e->new_children, s->relation);
				foreach(lc, s->inhRelations)
					e->rels = lappend_oid(e->rels, rv_relid(lfirst_node(RangeVar, lc)));
				break;
			}
		case T_VacuumStmt:
			if (((VacuumStmt *) parsetree)->is_vacuumcmd)
				e->vacuum = (VacuumStmt *) parsetree;
			break;
		case T_ClusterStmt:
			e->cluster = (ClusterStmt *) parsetree;
			break;
		case T_TransactionStmt:
			{
				TransactionStmt *s = (TransactionStmt *) parsetree;

				if (s->kind == TRANS_STMT_PREPARE)
				{
					if (prepare_gid)
						pfree(prepare_gid);
					prepare_gid = MemoryContextStrdup(TopMemoryContext, s->gid);
				}
				else if (s->kind == TRANS_STMT_COMMIT_PREPARED)
					e->finish_gid = pstrdup(s->gid);
				break;
			}
		default:
			break;
	}
}

/*
 * VACUUM FULL and CLUSTER rewrite tables: rows move (ctid, physical order
 * of an unordered scan).  The relations named, or every table of the
 * database when none is.  Looked at after the statement ran (its options
 * were valid then); nothing for plain VACUUM, which moves no live row.
 */
static void
rewrite_effects(UtilityEffects *e)
{
	ListCell   *lc;

	if (e->vacuum != NULL)
	{
		bool		full = false;

		foreach(lc, e->vacuum->options)
		{
			DefElem    *opt = lfirst_node(DefElem, lc);

			if (strcmp(opt->defname, "full") == 0)
				full = opt->arg == NULL || defGetBoolean(opt);
		}
		if (!full)
			return;
		if (e->vacuum->rels == NIL)
			e->database = true;
		foreach(lc, e->vacuum->rels)
		{
			VacuumRelation *vr = lfirst_node(VacuumRelation, lc);
			Oid			relid = OidIsValid(vr->oid) ? vr->oid : rv_relid(vr->relation);

			if (OidIsValid(relid))
				e->rels = lappend_oid(e->rels, relid);
			else
				e->database = true;
		}
	}
	if (e->cluster != NULL)
	{
		Oid			relid = rv_relid(e->cluster->relation);

		if (OidIsValid(relid))
			e->rels = lappend_oid(e->rels, relid);
		else
			e->database = true;
	}
}

/*
 * ATTACH PARTITION onto a parent whose cache_ext_row trigger PostgreSQL
 * will clone onto the new partition and everything under it: a tracked
 * partitioned table in that tree has a cache_ext_row of its own, which
 * would make the clone fail with "already exists".  The clone replaces
 * it (the parent's generation and key columns stand for the tree from
 * now on), so drop ours first; rolled back with the statement if it
 * fails.  Only where the caller owns the partition, as ATTACH requires.
 */
static void
prepare_attach(void *arg)
{
	UtilityEffects *e = arg;
	List	   *all;
	ListCell   *lc;
	bool		clone;

	if (get_rel_relkind(e->attach_parent) != RELKIND_PARTITIONED_TABLE ||
		!our_trigger(e->attach_parent, "cache_ext_row", &clone) ||
		!pg_class_ownercheck(e->attach_part, GetUserId()))
		return;
	all = find_all_inheritors(e->attach_part, NoLock, NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, all)
	{
		Oid			relid = lfirst_oid(lc);

		if (our_trigger(relid, "cache_ext_row", &clone) && !clone)
			drop_trigger(relid, "cache_ext_row");
	}
	SPI_finish();
}

/* After the statement: bump what it changed. */
static void
apply_effects(void *arg)
{
	UtilityEffects *e = arg;
	ListCell   *lc;

	foreach(lc, e->keys)
		touch_key((char *) lfirst(lc));
	foreach(lc, e->rels)
		touch_relation_tree(lfirst_oid(lc));
	if (e->database)
		touch_key(KeyDatabaseGenName());
	if (e->server)
		touch_key(KeyServerGenName());
}

/*
 * A new partition or inheritance child (a RangeVar) of a tracked relation
 * gets its triggers, and its tree is bumped.  A partition under a tracked
 * parent is covered by the parent's cloned row trigger, so the
 * statement-level triggers it had as a tracked table of its own go.
 */
static void
track_new_child(void *arg)
{
	Oid			child = rv_relid((RangeVar *) arg);
	List	   *keys = NIL;
	List	   *parents;
	bool		partition;

	if (!OidIsValid(child))
		return;
	if (!has_tracked_ancestor(child))
	{
		/*
		 * A tracked table that became a child of an untracked parent:
		 * writes through the parent must reach its row trigger.
		 */
		if (get_rel_relkind(child) == RELKIND_RELATION &&
			get_rel_info(child)->coverage == REL_TRACKED)
			install_triggers(child, false, inherited_keys(child));
		return;
	}
	parents = direct_parents(child);
	if (parents != NIL)
		keys = inherited_keys(linitial_oid(parents));
	partition = get_rel_relispartition(child);
	if (partition)
	{
		List	   *all = find_all_inheritors(child, NoLock, NULL);
		ListCell   *lc;
		static const char *const own[] = {"cache_ext_before", "cache_ext_stmt",
		"cache_ext_apply", "cache_ext_keys"};

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		foreach(lc, all)
			for (int i = 0; i < lengthof(own); i++)
				drop_trigger(lfirst_oid(lc), own[i]);
		SPI_finish();
	}
	install_triggers(child, partition, keys);
	touch_relation_tree(child);
}

/*
 * The utility hook.  Classify the statement (never raising), note the
 * generation keys of the relations it changes as they stand before it
 * (DETACH and NO INHERIT take ancestors away), run it, then bump them and
 * the keys as they stand after it (ATTACH adds ancestors).  The work
 * cache_ext adds runs in subtransactions: if it fails, the statement still
 * succeeds and the database generation is bumped instead.  Changes of
 * roles and of shared objects bump the server generation even in a
 * database without the extension (the role may read cached results in
 * another database of this server).
 */
static void
cache_ext_utility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	UtilityEffects e;
	bool		installed = false;
	ListCell   *lc;

	memset(&e, 0, sizeof(e));
	if (IsTransactionState())
	{
		installed = OidIsValid(get_trigger_func());
		classify_utility(pstmt->utilityStmt, &e);
	}

	if (installed)
	{
		List	   *valid = NIL;

		foreach(lc, e.rels)
			if (OidIsValid(lfirst_oid(lc)))
				valid = list_append_unique_oid(valid, lfirst_oid(lc));
		e.rels = valid;
		foreach(lc, e.rels)
			e.keys = relation_tree_keys(lfirst_oid(lc), e.keys);
		if (OidIsValid(e.attach_parent) && OidIsValid(e.attach_part))
			run_guarded(prepare_attach, &e, "prepare the partition for ATTACH");
	}

	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/* VACUUM and CLUSTER may have committed and started transactions */
	if (!IsTransactionState())
		return;
	if (installed)
	{
		rewrite_effects(&e);
		if ((e.keys != NIL || e.rels != NIL || e.database || e.server) &&
			!run_guarded(apply_effects, &e, "record what the statement changed"))
			touch_key(KeyDatabaseGenName());
		foreach(lc, e.new_children)
			if (!run_guarded(track_new_child, lfirst(lc),
							 "install its triggers on the new partition or child"))
				touch_key(KeyDatabaseGenName());
		if (e.finish_gid != NULL)
			finish_prepared(e.finish_gid);
	}
	else if (e.server && InvalShmemReady())
		touch_key(KeyServerGenName());
}

void
InvalInit(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	RegisterResourceReleaseCallback(release_callback, NULL);
	CacheRegisterRelcacheCallback(rel_infos_invalidate, (Datum) 0);
	OutboxInit();
	if (process_shared_preload_libraries_in_progress)
	{
		prev_utility_hook = ProcessUtility_hook;
		ProcessUtility_hook = cache_ext_utility;
	}
}

/* ================================================================
 * Installing the triggers
 * ================================================================
 */

static char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* Whether relid has a trigger named name on our function; *clone: cloned from a parent. */
static bool
our_trigger(Oid relid, const char *name, bool *clone)
{
	Relation	rel = RelationIdGetRelation(relid);
	Oid			func = get_trigger_func();
	bool		found = false;

	*clone = false;
	if (rel == NULL)
		return false;
	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &rel->trigdesc->triggers[i];

		if (strcmp(tg->tgname, name) == 0 && tg->tgfoid == func)
		{
			found = true;
			*clone = tg->tgisclone;
		}
	}
	RelationClose(rel);
	return found;
}

/* tgenabled of relid's trigger named name, or '\0' when there is none */
static char
trigger_state(Oid relid, const char *name, bool *ours)
{
	Relation	rel = RelationIdGetRelation(relid);
	char		state = '\0';

	*ours = false;
	if (rel == NULL)
		return '\0';
	if (rel->trigdesc)
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *tg = &rel->trigdesc->triggers[i];

			if (strcmp(tg->tgname, name) == 0)
			{
				state = tg->tgenabled;
				*ours = tg->tgfoid == get_trigger_func();
			}
		}
	RelationClose(rel);
	return state;
}

static void
spi_exec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

/*
 * relid's trigger name has exactly the arguments args (a List of char *)
 * and fires unconditionally, as ensure_trigger makes it.
 */
static bool
trigger_args_are(Oid relid, const char *name, List *args)
{
	Relation	rel = RelationIdGetRelation(relid);
	bool		same = false;

	if (rel == NULL)
		return false;
	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &rel->trigdesc->triggers[i];

		if (strcmp(tg->tgname, name) != 0)
			continue;
		same = tg->tgnargs == list_length(args) && fires_unconditionally(tg);
		for (int k = 0; same && k < tg->tgnargs; k++)
			same = strcmp(tg->tgargs[k], (char *) list_nth(args, k)) == 0;
	}
	RelationClose(rel);
	return same;
}

/*
 * Create trigger name (timing, events, level, args) on relid unless it
 * exists with those arguments, and make it fire as enabled says ('A'
 * always, 'R' replica only).
 */
static void
ensure_trigger(Oid relid, const char *name, const char *timing,
			   const char *events, const char *level, char enabled, List *args)
{
	bool		ours;
	char		state = trigger_state(relid, name, &ours);
	char	   *rel = qualified_name(relid);

	if (state != '\0' && !ours)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table \"%s\" already has a trigger named \"%s\" that cache_ext did not create",
						get_rel_name(relid), name),
				 errhint("Rename or drop that trigger, then track the table again.")));
	if (state == '\0' || !trigger_args_are(relid, name, args))
	{
		Oid			func = get_trigger_func();
		StringInfoData a;
		ListCell   *lc;

		initStringInfo(&a);
		foreach(lc, args)
			appendStringInfo(&a, "%s%s", a.len ? ", " : "",
							 quote_literal_cstr((char *) lfirst(lc)));
		spi_exec(psprintf("CREATE OR REPLACE TRIGGER %s %s %s ON %s FOR EACH %s EXECUTE FUNCTION %s(%s)",
						  quote_identifier(name), timing,
						  events, rel, level,
						  quote_qualified_identifier(get_namespace_name(get_func_namespace(func)),
													 "cache_ext_trigger"),
						  a.data));
		CommandCounterIncrement();
		state = trigger_state(relid, name, &ours);
	}
	if (state != enabled)
	{
		spi_exec(psprintf("ALTER TABLE %s ENABLE %s TRIGGER %s", rel,
						  enabled == TRIGGER_FIRES_ALWAYS ? "ALWAYS" : "REPLICA",
						  quote_identifier(name)));
		CommandCounterIncrement();
	}
}

/* Drop relid's trigger name if cache_ext made it. */
static void
drop_trigger(Oid relid, const char *name)
{
	bool		ours;

	if (trigger_state(relid, name, &ours) != '\0' && ours)
	{
		spi_exec(psprintf("DROP TRIGGER %s ON %s", quote_identifier(name),
						  qualified_name(relid)));
		CommandCounterIncrement();
	}
}

/*
 * The triggers of one relation.  A partitioned table gets a row-level
 * trigger, which PostgreSQL clones onto every partition, present and
 * future; TRUNCATE triggers are not cloned, so every partition gets its
 * own.  A table gets statement-level triggers, plus a row-level one that
 * fires only during logical-replication apply (which fires no statement
 * triggers).
 */
static void
install_triggers(Oid relid, bool partition_of_tracked, List *keys)
{
	char		relkind = get_rel_relkind(relid);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (relkind == RELKIND_PARTITIONED_TABLE)
	{
		List	   *all = find_all_inheritors(relid, NoLock, NULL);
		ListCell   *lc;

		/* its arguments, the key columns, are cloned with it */
		if (!partition_of_tracked)
			ensure_trigger(relid, "cache_ext_row", "AFTER",
						   "INSERT OR UPDATE OR DELETE", "ROW", 'A', keys);
		foreach(lc, all)
			ensure_trigger(lfirst_oid(lc), "cache_ext_truncate", "AFTER",
						   "TRUNCATE", "STATEMENT", 'A', NIL);
	}
	else if (relkind == RELKIND_RELATION)
	{
		if (!partition_of_tracked)
		{
			/* notes the write before the statement's first row */
			ensure_trigger(relid, "cache_ext_before", "BEFORE",
						   "INSERT OR UPDATE OR DELETE", "STATEMENT", 'A', NIL);
			ensure_trigger(relid, "cache_ext_stmt", "AFTER",
						   "INSERT OR UPDATE OR DELETE", "STATEMENT", 'A', NIL);
			/*
			 * A row-level one for logical-replication apply; on a partition
			 * or inheritance child it always fires: a statement on its
			 * parent (untracked, or tracked later) fires no statement
			 * trigger of the child, only its row triggers.
			 */
			ensure_trigger(relid, "cache_ext_apply", "AFTER",
						   "INSERT OR UPDATE OR DELETE", "ROW",
						   (get_rel_relispartition(relid) || direct_parents(relid) != NIL) ?
						   'A' : 'R', NIL);
			/* key-level tracking: the values of the key columns of each row */
			if (keys != NIL)
				ensure_trigger(relid, "cache_ext_keys", "AFTER",
							   "INSERT OR UPDATE OR DELETE", "ROW", 'A', keys);
			else
				drop_trigger(relid, "cache_ext_keys");
		}
		ensure_trigger(relid, "cache_ext_truncate", "AFTER", "TRUNCATE", "STATEMENT", 'A', NIL);
	}
	SPI_finish();
}

/* The key columns relid's tracked ancestor is tracked by (for new children). */
static List *
inherited_keys(Oid relid)
{
	RelInfo    *ri = get_rel_info(relid);
	List	   *keys = NIL;

	for (int i = 0; i < ri->nkeys; i++)
		keys = lappend(keys, pstrdup(NameStr(ri->keys[i])));
	return keys;
}

/* ================================================================
 * SQL functions
 * ================================================================
 */

static void
check_trackable(Oid relid, bool for_untrack)
{
	char		relkind = get_rel_relkind(relid);
	const char *name = get_rel_name(relid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (relkind == RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot track view \"%s\"", name),
				 errhint("Track the tables the view reads: queries through the view depend on them.")));
	if (relkind == RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot track foreign table \"%s\"", name),
				 errdetail("Its rows change on another server, where cache_ext cannot see the writes."),
				 errhint("Results that read it are cached under their TTL only; call cache_invalidate() after changing it.")));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", name)));
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP && !for_untrack)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot track temporary table \"%s\"", name),
				 errdetail("Queries that read temporary tables are never cached.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), name);
}

/*
 * Validate key_columns for relid: existing user columns of a type whose
 * equality cache_ext can key (see InvalKeyTypeSupported), no duplicates.
 */
static List *
check_key_columns(Oid relid, ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *keys = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		return NIL;
	if (n > INVAL_MAX_KEY_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("at most %d key columns may be tracked, not %d",
						INVAL_MAX_KEY_COLUMNS, n)));
	for (int i = 0; i < n; i++)
	{
		char	   *col;
		AttrNumber	attno;
		Oid			typid;
		Oid			collid;
		int32		typmod;
		ListCell   *lc;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key_columns must not contain NULL")));
		col = TextDatumGetCString(elems[i]);
		attno = get_attnum(relid, col);
		if (attno == InvalidAttrNumber || attno < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							col, get_rel_name(relid))));
		foreach(lc, keys)
			if (strcmp((char *) lfirst(lc), col) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("key column \"%s\" is given twice", col)));
		get_atttypetypmodcoll(relid, attno, &typid, &typmod, &collid);
		if (!InvalKeyTypeSupported(typid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("key column \"%s\" has type %s, which cache_ext cannot track by value",
							col, format_type_be(typid)),
					 errhint("Key columns must be of type smallint, integer, bigint, text, varchar or uuid. Track the table without key_columns instead.")));
		if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("key column \"%s\" has a nondeterministic collation", col),
					 errdetail("Values that are equal under it may differ byte for byte.")));
		if (strlen(col) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("key column name \"%s\" is too long", col)));
		keys = lappend(keys, col);
	}
	return keys;
}

PG_FUNCTION_INFO_V1(cache_track);
PG_FUNCTION_INFO_V1(cache_untrack);
PG_FUNCTION_INFO_V1(cache_relation_tracking);
PG_FUNCTION_INFO_V1(cache_invalidate);
PG_FUNCTION_INFO_V1(cache_invalidate_tag);
PG_FUNCTION_INFO_V1(cache_flush);
PG_FUNCTION_INFO_V1(cache_purge);
PG_FUNCTION_INFO_V1(cache_ext_trigger);

Datum
cache_track(PG_FUNCTION_ARGS)
{
	Oid			relid;
	List	   *all;
	ListCell   *lc;
	List	   *keys = NIL;

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
		ereport(NOTICE,
				(errmsg("materialized view \"%s\" needs no tracking", get_rel_name(relid)),
				 errdetail("REFRESH MATERIALIZED VIEW and DDL invalidate the results that read it.")));
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
		RelInfo    *ri = get_rel_info(relid);
		bool		same = ri->nkeys == list_length(keys);
		LOCKMODE	mode;

		for (int i = 0; same && i < ri->nkeys; i++)
			same = strcmp(NameStr(ri->keys[i]), (char *) list_nth(keys, i)) == 0;
		mode = (ri->nkeys > 0 && !same) ? AccessExclusiveLock : ShareRowExclusiveLock;
		LockRelationOid(relid, mode);
		all = find_all_inheritors(relid, mode, NULL);
	}
	foreach(lc, all)
	{
		Oid			child = lfirst_oid(lc);

		if (child != relid)
		{
			char		kind = get_rel_relkind(child);

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

Datum
cache_untrack(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	List	   *all;
	ListCell   *lc;
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
		Oid			child = lfirst_oid(lc);

		for (int i = 0; i < lengthof(names); i++)
		{
			bool		ours;
			Relation	rel;
			bool		clone = false;

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

/* For the cache_tracked view: how relid is covered. */
Datum
cache_relation_tracking(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {0};
	RelInfo    *ri;

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
		Datum		k[INVAL_MAX_KEY_COLUMNS];

		for (int i = 0; i < ri->nkeys; i++)
			k[i] = CStringGetTextDatum(NameStr(ri->keys[i]));
		values[3] = PointerGetDatum(construct_array(k, ri->nkeys, TEXTOID, -1, false, TYPALIGN_INT));
	}
	else
		nulls[3] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum
cache_invalidate(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char		relkind = get_rel_relkind(relid);

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

Datum
cache_invalidate_tag(PG_FUNCTION_ARGS)
{
	char	   *tag = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (tag[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tags must be non-empty")));
	touch_key(KeyTagGenName(tag));
	PG_RETURN_VOID();
}

Datum
cache_flush(PG_FUNCTION_ARGS)
{
	touch_key(KeyDatabaseGenName());
	PG_RETURN_VOID();
}

/*
 * Delete this database's entries: the store's SCAN + UNLINK batches, never
 * KEYS.  Raises when Redis fails, saying how many were deleted before.
 */
Datum
cache_purge(PG_FUNCTION_ARGS)
{
	char	   *pattern = KeyEntryPattern();
	StorePurgeBatch b;
	int64		deleted = 0;

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
					 errhint("The Redis user of cache_ext.redis_url needs +scan and +unlink on the key prefix.") : 0));
		deleted += b.deleted;
	} while (strcmp(b.cursor, "0") != 0);

	PG_RETURN_INT64(deleted);
}

/*
 * The trigger: note the write.  Statement-level for tables; row-level on
 * partitions (cloned) and during logical-replication apply, where the
 * shortcut below makes every row after the first cost a comparison.
 */
/*
 * Key-level tracking, for one row: the generations of its key values (OLD
 * and NEW; the same value once).  Past cache_ext.max_keys_per_xact
 * distinct keys of one table in a transaction, the table's key-level
 * entries are invalidated as a whole instead.
 */
static void
touch_row_keys(TriggerData *td, Oid relid)
{
	RelInfo    *ri = get_rel_info(relid);
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	HeapTuple	tuples[2];
	int			ntuples = 0;
	KeyCount   *kc;
	bool		found;

	if (ri->coverage != REL_TRACKED || ri->nkeys == 0)
		return;
	if (key_counts == NULL)
	{
		HASHCTL		ctl;

		if (touched == NULL)
			touch_key(KeyTableGenName(relid));	/* creates touched_cxt */
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(KeyCount);
		ctl.hcxt = touched_cxt;
		key_counts = hash_create("cache_ext key counts", 8, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	kc = hash_search(key_counts, &ri->scope, HASH_ENTER, &found);
	if (!found)
	{
		kc->count = 0;
		kc->escalated = false;
	}
	if (kc->escalated)
		return;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		tuples[ntuples++] = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		tuples[ntuples++] = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		tuples[ntuples++] = td->tg_trigtuple;
		tuples[ntuples++] = td->tg_newtuple;
	}

	for (int k = 0; k < ri->nkeys; k++)
	{
		const char *col = NameStr(ri->keys[k]);
		AttrNumber	attno = InvalidAttrNumber;
		Datum		prev = (Datum) 0;
		bool		prev_set = false;

		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), col) == 0)
			{
				attno = att->attnum;
				break;
			}
		}
		if (attno == InvalidAttrNumber)
		{
			/* the column is gone: be safe */
			kc->escalated = true;
			touch_relation(relid, true);
			return;
		}
		for (int i = 0; i < ntuples; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
			bool		isnull;
			Datum		v = heap_getattr(tuples[i], attno, desc, &isnull);
			char	   *name;

			/* a NULL key matches no equality: nothing to invalidate */
			if (isnull)
				continue;
			/* UPDATE that kept the key: once */
			if (prev_set && datumIsEqual(prev, v, att->attbyval, att->attlen))
				continue;
			prev = v;
			prev_set = true;
			name = InvalKeyValueName(ri->scope, col, att->atttypid, v);
			if (name == NULL)
			{
				kc->escalated = true;
				touch_relation(relid, true);
				return;
			}
			/* distinct keys count, not rows */
			if (!InvalScopeTouched(name) && kc->count + 1 > cache_ext_max_keys_per_xact)
			{
				kc->escalated = true;
				touch_relation(relid, true);
				return;
			}
			if (touch_key(name))
				kc->count++;
			pfree(name);
		}
	}
}

Datum
cache_ext_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			relid;
	int			level;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cache_ext_trigger() must be called as a trigger")));
	relid = RelationGetRelid(td->tg_relation);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event) && td->tg_trigger->tgnargs > 0)
		touch_row_keys(td, relid);
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		touch_relation(relid, true);
		return PointerGetDatum(NULL);
	}
	level = GetCurrentTransactionNestLevel();
	if (relid != last_relid || level != last_level)
	{
		touch_relation(relid, false);
		last_relid = relid;
		last_level = level;
	}
	return PointerGetDatum(NULL);
}
