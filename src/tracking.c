/*-------------------------------------------------------------------------
 *
 * tracking.c
 *	  Which relations are tracked, and by which key columns: read from the
 *	  triggers of ours on each relation (never from a table of ours), and
 *	  cached per backend.
 *
 * Which relation's generation stands for a relation read by a query: the
 * topmost tracked ancestor (a partition or inheritance child maps to its
 * tracked parent), else the relation itself.  A write bumps the relation's
 * own generation and those of all its tracked ancestors.  Key-level
 * tracking names the generation of one value of a key column.
 *
 * State (backend-local, no locks): the cache of RelInfo (dropped on any
 * relcache invalidation) and tracking_epoch, which changes with it.
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
#include "inval_internal.h"

#define DML_EVENTS (TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE | TRIGGER_TYPE_DELETE)

/* What the triggers of ours on a relation say of its tracking. */
typedef struct Tracking
{
	bool any;		 /* has a trigger of ours */
	bool root;		 /* ... created on it, not cloned from a parent */
	bool covered;	 /* every write path fires one */
	const char *why; /* when not covered */
	int nkeys;		 /* key columns: the arguments of its row trigger */
	NameData keys[INVAL_MAX_KEY_COLUMNS];
} Tracking;


static HTAB *rel_infos = NULL;

static bool rel_infos_stale = false;

static Oid trigger_func = InvalidOid;

/* incremented whenever what is known of relations' tracking may change */
static uint64 tracking_epoch = 1;

void
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
Oid
extension_namespace(Oid *extoid)
{
	Oid ext = get_extension_oid("cache_ext", true);
	Oid nsp = InvalidOid;
	Relation extrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tup;

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
Oid
get_trigger_func(void)
{
	if (!OidIsValid(trigger_func))
	{
		Oid nsp = extension_namespace(NULL);
		char *nspname;

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

/*
 * Whether tg, a trigger on our function, fires on every event it is
 * declared for: no WHEN condition, no UPDATE OF column list, not a
 * constraint trigger (deferrable, fired at commit or SET CONSTRAINTS), no
 * transition tables (the trigger needs none; a hand-made one is suspect).
 * Anything else does not count as coverage, whoever created it.
 */
bool
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
	Oid func = get_trigger_func();
	bool dml = false,
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
			Trigger *tg = &td->triggers[i];
			bool always = tg->tgenabled == TRIGGER_FIRES_ALWAYS;

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

List *
direct_parents(Oid relid)
{
	Relation inh;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tup;
	List *parents = NIL;

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
	Oid relid = ri->relid;
	char relkind = get_rel_relkind(relid);
	Relation rel;
	Tracking t;
	List *level;
	int depth = 0;
	int scope_depth = -1;

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
		List *next = NIL;
		ListCell *lc;

		depth++;
		foreach(lc, level)
		{
			Oid anc = lfirst_oid(lc);
			Relation arel = RelationIdGetRelation(anc);

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

RelInfo *
get_rel_info(Oid relid)
{
	RelInfo *ri;
	bool found;

	if (rel_infos_stale && rel_infos != NULL)
	{
		hash_destroy(rel_infos);
		rel_infos = NULL;
		trigger_func = InvalidOid;
	}
	rel_infos_stale = false;
	if (rel_infos == NULL)
	{
		HASHCTL ctl;

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
	RelInfo *ri = get_rel_info(relid);

	*scope = ri->scope;
	*why = ri->why;
	return ri->coverage;
}

bool
InvalKeyColumn(Oid relid, const char *colname, Oid *scope)
{
	RelInfo *ri = get_rel_info(relid);

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
	int64 i;

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
				text *t = DatumGetTextPP(value);

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
	char *name;

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
