/*-------------------------------------------------------------------------
 *
 * xactset.c
 *	  The per-transaction set of touched generation keys, and the commit
 *	  callbacks that bump them.
 *
 * Writers (the trigger function, the DDL hook, cache_invalidate*,
 * cache_flush) add the generation keys they touch to the set.  Each key
 * remembers the subtransaction level that added it, so a rolled-back
 * subtransaction bumps nothing.  Past cache_ext.max_keys_per_xact key
 * values of one relation, the relation's generation is bumped instead.
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
 * State (backend-local, no locks): the set and its memory context, the key
 * counts per relation, the trigger's last-relation shortcut, the GID of a
 * PREPARE TRANSACTION being run, and whether a committed set awaits its
 * bumps.
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
#include "commitq.h"

typedef struct TouchedKey
{
	char key[INVAL_KEY_LEN];
	int level; /* subtransaction nesting level that added it */
} TouchedKey;

static HTAB *touched = NULL;

static MemoryContext touched_cxt = NULL;

/* key scopes added per scope relation in this transaction (escalation) */
typedef struct KeyCount
{
	Oid scope;
	int count;
	bool escalated;
} KeyCount;

static HTAB *key_counts = NULL;

/* the trigger's shortcut: this relation was noted at this level already */
static Oid last_relid = InvalidOid;

static int last_level = 0;

/* the GID of the PREPARE TRANSACTION being run */
static char *prepare_gid = NULL;

/* Add key to this transaction's set; true when it was not there yet. */
bool
touch_key(const char *key)
{
	TouchedKey *tk;
	bool found;
	char k[INVAL_KEY_LEN];

	if (strlen(key) >= INVAL_KEY_LEN)
		elog(ERROR, "cache_ext generation key too long: \"%s\"", key);
	if (touched == NULL)
	{
		HASHCTL ctl;

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

	/*
	 * A transaction that bumps must write a commit record, even when it
	 * wrote nothing else (cache_invalidate, cache_flush): hot standbys order
	 * the bumps by its LSN (commitq.c's watermark).
	 */
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()) &&
		!RecoveryInProgress() && !IsInParallelMode())
		(void) GetTopTransactionId();
	return !found;
}

/*
 * A write to relid: its own generation and its tracked ancestors'.  A
 * structural change (TRUNCATE, DDL, too many keys) also bumps the
 * generations that key-level entries depend on.
 */
void
touch_relation(Oid relid, bool structural)
{
	RelInfo *ri = get_rel_info(relid);

	for (int i = 0; i < ri->nbump; i++)
	{
		touch_key(KeyTableGenName(ri->bump[i]));
		if (structural)
			touch_key(KeyTableDdlGenName(ri->bump[i]));
	}
}

/* The generation keys a write to relid bumps: its own, its tracked ancestors'. */
static List *
relation_keys(Oid relid, List *keys)
{
	RelInfo *ri = get_rel_info(relid);

	for (int i = 0; i < ri->nbump; i++)
	{
		keys = lappend(keys, KeyTableGenName(ri->bump[i]));
		keys = lappend(keys, KeyTableDdlGenName(ri->bump[i]));
	}
	return keys;
}

/* DDL on relid changes it and every partition or child under it. */
List *
relation_tree_keys(Oid relid, List *keys)
{
	List *all;
	ListCell *lc;

	if (get_rel_relkind(relid) == '\0')
		return keys;
	all = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, all)
		keys = relation_keys(lfirst_oid(lc), keys);
	list_free(all);
	return keys;
}

void
touch_relation_tree(Oid relid)
{
	ListCell *lc;
	List *keys = relation_tree_keys(relid, NIL);

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
	char k[INVAL_KEY_LEN];

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
	char **keys;
	int i = 0;

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
	key_counts = NULL; /* it lives in touched_cxt */
	if (touched_cxt != NULL)
		MemoryContextReset(touched_cxt);
	last_relid = InvalidOid;
	last_level = 0;
}

/*
 * After the commit is visible: into the commit queue, for the background
 * worker to send (commitq.c: readers wait for it, no round trip here);
 * else one MSET now, or the outbox.  Never throws: an error here could not
 * abort the transaction anymore.
 */
static void
bump_at_commit(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	char **volatile keys = NULL;
	volatile int n = 0;
	volatile bool ok = false;

	PG_TRY();
	{
		int nk;

		keys = touched_keys(&nk);
		n = nk;
		ok = CommitQueuePush(keys, n) ||
			OutboxSendBumps(keys, n, cache_ext_invalidation_timeout);
		if (!ok && InvalShmemReady())
			OutboxAdd(keys, n);
		else if (!ok)
			ereport(WARNING,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("cache_ext could not deliver the invalidations of this transaction"),
					 errdetail("cache_ext is not in shared_preload_libraries, so it cannot keep them for later.  Results that read tracked tables are not served in this configuration, but what this transaction invalidated with cache_invalidate(), cache_invalidate_tag() or cache_flush() may be served until its TTL ends."),
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
		OutboxRequestServerBump(); /* could not even record them */

	/*
	 * A change to shared catalogs (roles, memberships, database or
	 * tablespace privileges) reaches every database, and so every Redis
	 * target, not only this backend's: ask for the server generation of all
	 * of them, now that the commit is visible.
	 */
	else if (InvalShmemReady() && InvalScopeTouched(KeyServerGenName()))
		OutboxRequestServerBump();

	/*
	 * The local tier's counters, last: after the Redis bump was queued
	 * (its in-flight counters up), sent or kept (docs/invalidation.md, "The
	 * local tier").  Without the keys,
	 * everything local goes.
	 */
	if (keys != NULL)
		L1GenBump(keys, n);
	else
		L1GenBumpAll();
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
	Oid ext;
	Oid nsp = extension_namespace(&ext);
	Oid relid;
	Relation rel;
	TupleDesc desc;
	List *indexes;

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
	char **keys;
	int n;
	Datum *elems;
	Datum values[2];
	bool nulls[2] = {false, false};
	Relation rel;
	HeapTuple tup;

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
	Relation rel = open_prepared_table();
	TupleDesc desc;
	Snapshot snap;
	TableScanDesc scan;
	HeapTuple tup;
	size_t gidlen = strlen(gid);
	List *found = NIL;
	char **keys;
	ListCell *lc;
	int i = 0;

	*n = 0;
	if (rel == NULL)
		return NULL;
	desc = RelationGetDescr(rel);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool isnull;
		Datum d = heap_getattr(tup, 1, desc, &isnull);
		text *g;
		Datum *elems;
		bool *enulls;
		int nelems;

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
		char *k = lfirst(lc);
		bool dup = false;

		for (int j = 0; j < i && !dup; j++)
			dup = strcmp(keys[j], k) == 0;
		if (!dup)
			keys[i++] = k;
	}
	*n = i;
	return keys;
}

typedef struct TakePrepared
{
	const char *gid;
	MemoryContext cxt;
	char **keys;
	int n;
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
void
finish_prepared(const char *gid)
{
	TakePrepared tp = {gid, CurrentMemoryContext, NULL, 0};
	uint32 holdoff = InterruptHoldoffCount;

	if (!InvalShmemReady())
		return;

	/*
	 * The prepared transaction is committed and visible: nothing may stop
	 * its bumps now.  Interrupts are held, as at COMMIT (a cancel or a
	 * terminate ends the wait for Redis, and the keys go to the outbox);
	 * an error asks for the server bump instead.
	 */
	HOLD_INTERRUPTS();
	PG_TRY();
	{
		if (!run_guarded(take_prepared_guarded, &tp,
						 "read the invalidations of the prepared transaction"))
			OutboxRequestServerBump();
		else if (tp.n > 0 && !CommitQueuePush(tp.keys, tp.n) &&
				 !OutboxSendBumps(tp.keys, tp.n, cache_ext_invalidation_timeout))
			OutboxAdd(tp.keys, tp.n);
		/* then the local tier's counters, as at a commit */
		if (tp.n > 0)
			L1GenBump(tp.keys, tp.n);
	}
	PG_CATCH();
	{
		InterruptHoldoffCount = holdoff; /* an ERROR cleared it */
		OutboxRequestServerBump();
		PG_RE_THROW();
	}
	PG_END_TRY();
	RESUME_INTERRUPTS();
}

/*
 * The commit is visible once XACT_EVENT_COMMIT is called; the bumps are
 * sent a little later, when the transaction's resource owner has released
 * its locks (RESOURCE_RELEASE_AFTER_LOCKS), so that the round trip does not
 * lengthen the time other writers wait for this one's row locks.  Both
 * happen before COMMIT returns to the client.
 */
static bool bump_pending = false;

void
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

void
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

void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	TouchedKey *tk;
	int level;

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
			tk->level = level - 1; /* now the parent's */
		else
			hash_search(touched, tk->key, HASH_REMOVE, NULL); /* rolled back */
	}
}

/* PREPARE TRANSACTION gid is being run: its set is saved under gid. */
void
XactSetPrepareGid(const char *gid)
{
	if (prepare_gid)
		pfree(prepare_gid);
	prepare_gid = MemoryContextStrdup(TopMemoryContext, gid);
}

/*
 * Key-level tracking, for one row: the generations of its key values (OLD
 * and NEW; the same value once).  Past cache_ext.max_keys_per_xact
 * distinct keys of one table in a transaction, the table's key-level
 * entries are invalidated as a whole instead.
 */
void
touch_row_keys(TriggerData *td, Oid relid)
{
	RelInfo *ri = get_rel_info(relid);
	TupleDesc desc = RelationGetDescr(td->tg_relation);
	HeapTuple tuples[2];
	int ntuples = 0;
	KeyCount *kc;
	bool found;

	if (ri->coverage != REL_TRACKED || ri->nkeys == 0)
		return;
	if (key_counts == NULL)
	{
		HASHCTL ctl;

		if (touched == NULL)
			touch_key(KeyTableGenName(relid)); /* creates touched_cxt */
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
		AttrNumber attno = InvalidAttrNumber;
		Datum prev = (Datum) 0;
		bool prev_set = false;

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
			bool isnull;
			Datum v = heap_getattr(tuples[i], attno, desc, &isnull);
			char *name;

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

/*
 * A write to relid (a statement or a row of it): touch its generations,
 * once per relation and subtransaction level in a row (the trigger fires
 * per row on partitions and children).
 */
void
touch_relation_once(Oid relid)
{
	int level = GetCurrentTransactionNestLevel();

	if (relid != last_relid || level != last_level)
	{
		touch_relation(relid, false);
		last_relid = relid;
		last_level = level;
	}
}
