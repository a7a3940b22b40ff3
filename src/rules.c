/*-------------------------------------------------------------------------
 *
 * rules.c
 *	  Cache rules (docs/rules.md): the registry of statement shapes that
 *	  are served through the cache when an application sends them as plain
 *	  SQL.  cache_rule_create(), cache_rule_drop(), the counters behind the
 *	  cache_rules view, and each backend's copy of the rules by query id.
 *
 * Rules live in the extension's table cache_ext_rules (dumped with
 * pg_extension_config_dump).  A query identifier holds OIDs, so a backend
 * does not trust the stored one: it analyses each rule's text again, as
 * the rule's owner and under the search_path the rule was created with,
 * when it loads the rules (after a restore the OIDs differ).  A statement
 * trigger on the table sends a relcache invalidation of it, so that every
 * backend loads the rules again at its next statement after a change
 * commits; a change to a relation a rule names does too (its OID may be
 * another now), and creating, renaming or dropping any relation while a
 * rule's text does not analyse (its table may exist now).
 *
 * State: backend-local: the hash of rules by query id and the relations
 * they name in rules_cxt (under CacheMemoryContext), rules_state,
 * rules_incomplete and inval_count, touched only by this backend (the invalidation callbacks only mark it stale).  Shared:
 * RulesShared, the counters of up to RULES_MAX_COUNTED rules of all
 * databases, guarded by its spinlock (held only to find a slot or add to
 * it); without shared memory (not preloaded) each backend counts its own
 * in a RulesShared of its own (counters()), through the same slots.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/keywords.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "rewrite/rewriteHandler.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/queryjumble.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "catalog_inval.h"
#include "call.h"
#include "inval_internal.h"
#include "rules.h"
#include "subxact.h"

#define RULES_MAX_COUNTED 256

/* the columns of cache_ext_rules, as 0.7 creates it */
enum
{
	RC_NAME,
	RC_QUERY,
	RC_SHAPE,
	RC_QUERYID,
	RC_PARAM_QUERYID,
	RC_TTL,
	RC_TAGS,
	RC_OWNER,
	RC_SEARCH_PATH,
	RC_CREATED_AT,
	RC_NCOLS
};

static const Oid rule_column_types[RC_NCOLS] = {
	TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, INTERVALOID, TEXTARRAYOID,
	REGROLEOID, TEXTOID, TIMESTAMPTZOID};

/* the counters of one rule, by status (CallStatus order) */
typedef struct RuleCounters
{
	Oid dbid; /* InvalidOid: a free slot */
	char name[NAMEDATALEN];
	int64 n[3];
	double us[3];
} RuleCounters;

typedef struct RulesShared
{
	slock_t lock;
	RuleCounters slot[RULES_MAX_COUNTED];
} RulesShared;

static RulesShared *rules_shared = NULL;

/*
 * The counters: shared memory when preloaded, else this backend's own
 * (static, so counting never allocates: it runs at the end of statements).
 */
static RulesShared *
counters(void)
{
	static RulesShared own;
	static bool own_ready = false;

	if (rules_shared != NULL)
		return rules_shared;
	if (!own_ready)
	{
		SpinLockInit(&own.lock);
		own_ready = true;
	}
	return &own;
}

typedef enum RulesState
{
	RULES_UNKNOWN, /* to be loaded at the next statement */
	RULES_NONE,	   /* no rule, or the extension is not in this database */
	RULES_LOADED
} RulesState;

typedef struct RuleById
{
	uint64 queryid; /* the key */
	RuleDef *rule;
} RuleById;

static RulesState rules_state = RULES_UNKNOWN;
static uint64 inval_count = 0;
static Oid rules_relid = InvalidOid;
static HTAB *rules_hash = NULL;
static MemoryContext rules_cxt = NULL;
static bool callbacks_registered = false;

/* relations the loaded rules name: a change to one reloads them */
static List *rules_relids = NIL;

/* some rule's text did not analyse: any new relation may make it apply */
static bool rules_incomplete = false;

/*
 * A rule's text named a relation locked elsewhere when the rules loaded:
 * that rule does not apply until they load again at this time (0: none).
 */
static TimestampTz rules_retry_at = 0;

/*
 * A relation changed: the rules are loaded again when it is the rules
 * table or one the rules name (its OID, and so their query ids, may be
 * another now), on a reset, and while there are none (the extension may
 * just have been created).
 */
static void
rules_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == rules_relid ||
		rules_state == RULES_NONE || list_member_oid(rules_relids, relid))
	{
		rules_state = RULES_UNKNOWN;
		inval_count++;
	}
}

/*
 * A relation was created, renamed or dropped: only when some rule did not
 * analyse (its table may exist now), or there are no rules, are they loaded
 * again; otherwise a relation created elsewhere would make every backend
 * load every rule.
 */
static void
rules_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	if (rules_incomplete || rules_state == RULES_NONE)
	{
		rules_state = RULES_UNKNOWN;
		inval_count++;
	}
}

/* Forget the loaded rules: the next statement loads them again. */
void
RulesResetLoaded(void)
{
	rules_state = RULES_UNKNOWN;
	inval_count++;
}

/*
 * The OID of the table name of this database's cache_ext (the rules or the
 * policies table), or InvalidOid when the extension (0.7 or later) is not
 * installed here (or the table there is not the extension's own).
 */
Oid
ExtensionTable(const char *name)
{
	Oid ext;
	Oid nsp = extension_namespace(&ext);
	Oid relid;

	if (!OidIsValid(nsp))
		return InvalidOid;
	relid = get_relname_relid(name, nsp);
	/* the extension's own plain table, read with heap access */
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION ||
		getExtensionOfObject(RelationRelationId, relid) != ext)
		return InvalidOid;
	return relid;
}

/* The rules table of this database's cache_ext, or InvalidOid. */
Oid
RulesTable(void)
{
	return ExtensionTable(RULES_TABLE);
}

/* Whether the current role may act for every rule: superuser or admin. */
bool
RulesIsAdmin(void)
{
	Oid admin = get_role_oid(RULES_ADMIN_ROLE, true);

	return superuser() ||
		(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin));
}

/* ---- counters ------------------------------------------------------------ */

void
RulesShmemRequest(void)
{
	RequestAddinShmemSpace(sizeof(RulesShared));
}

void
RulesShmemInit(void)
{
	bool found;

	rules_shared = ShmemInitStruct("cache_ext rules", sizeof(RulesShared), &found);
	if (!found)
	{
		memset(rules_shared, 0, sizeof(RulesShared));
		SpinLockInit(&rules_shared->lock);
	}
}

static bool
slot_is(const RuleCounters *c, const char *name)
{
	return c->dbid == MyDatabaseId && strcmp(c->name, name) == 0;
}

/*
 * The slot of this database's rule name: found, or claimed (zeroed) when
 * reset or absent; -1 when they are full.
 */
int
RulesCountersSlot(const char *name, bool reset)
{
	RulesShared *rs = counters();
	int found = -1;

	SpinLockAcquire(&rs->lock);
	for (int i = 0; i < RULES_MAX_COUNTED && found < 0; i++)
		if (slot_is(&rs->slot[i], name))
			found = i;
	for (int i = 0; i < RULES_MAX_COUNTED && found < 0; i++)
		if (!OidIsValid(rs->slot[i].dbid))
		{
			found = i;
			reset = true;
		}
	if (found >= 0 && reset)
	{
		RuleCounters *c = &rs->slot[found];

		memset(c, 0, sizeof(*c));
		c->dbid = MyDatabaseId;
		strlcpy(c->name, name, NAMEDATALEN);
	}
	SpinLockRelease(&rs->lock);
	return found;
}

/* Free the slot of this database's rule name now. */
static void
counters_free_now(const char *name)
{
	RulesShared *rs = counters();

	SpinLockAcquire(&rs->lock);
	for (int i = 0; i < RULES_MAX_COUNTED; i++)
		if (slot_is(&rs->slot[i], name))
			rs->slot[i].dbid = InvalidOid;
	SpinLockRelease(&rs->lock);
}

/*
 * Counters of dropped rules, freed when the drop commits (review-rules
 * RR7: a rolled-back drop keeps them).  Each with the transaction nesting
 * level of its drop: a rolled-back savepoint forgets the drops under it.
 * Backend-local, in TopMemoryContext.
 */
typedef struct PendingFree
{
	char name[NAMEDATALEN];
	int level;
} PendingFree;

static List *pending_free = NIL;
static bool free_callbacks = false;

static void
pending_free_xact(XactEvent event, void *arg)
{
	ListCell *lc;

	if (pending_free == NIL)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		foreach(lc, pending_free)
			counters_free_now(((PendingFree *) lfirst(lc))->name);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		list_free_deep(pending_free);
		pending_free = NIL;
	}
}

static void
pending_free_subxact(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int level = GetCurrentTransactionNestLevel();
	ListCell *lc;

	foreach(lc, pending_free)
	{
		PendingFree *p = (PendingFree *) lfirst(lc);

		if (p->level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			pending_free = foreach_delete_current(pending_free, lc);
			pfree(p);
		}
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			p->level = level - 1;
	}
}

/*
 * The counters of this database's rule name go when this transaction
 * commits (cache_rule_drop); forget (keep = true, cache_rule_create of the
 * same name again) a pending free.
 */
void
RulesCountersFree(const char *name, bool keep)
{
	MemoryContext old;
	PendingFree *p;
	ListCell *lc;

	foreach(lc, pending_free)
	{
		p = (PendingFree *) lfirst(lc);
		if (strcmp(p->name, name) == 0)
		{
			pending_free = foreach_delete_current(pending_free, lc);
			pfree(p);
		}
	}
	if (keep)
		return;
	if (!free_callbacks)
	{
		RegisterXactCallback(pending_free_xact, NULL);
		RegisterSubXactCallback(pending_free_subxact, NULL);
		free_callbacks = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc0(sizeof(PendingFree));
	strlcpy(p->name, name, NAMEDATALEN);
	p->level = GetCurrentTransactionNestLevel();
	pending_free = lappend(pending_free, p);
	MemoryContextSwitchTo(old);
}

/* Count one statement served under rule, which took us microseconds. */
void
RulesCount(RuleDef *rule, CallStatus status, double us)
{
	RulesShared *rs = counters();
	RuleCounters *c;

	if (rule->slot < 0)
		return;
	c = &rs->slot[rule->slot];
	SpinLockAcquire(&rs->lock);
	/* the slot may have been freed and reused since the rules loaded */
	if (slot_is(c, rule->name))
	{
		c->n[status]++;
		c->us[status] += us;
	}
	SpinLockRelease(&rs->lock);
}

/* ---- loading ------------------------------------------------------------- */

/* A row of the rules table, as the loader reads it. */
typedef struct RuleRow
{
	char *name;
	char *query;
	char *shape;
	bool has_ttl;
	Interval ttl;
	ArrayType *tags;
	Oid owner;
	char *search_path;
} RuleRow;

/* text parsed and analysed now (parameters' types inferred): one SELECT, or NULL */
static Query *
text_query(const char *text)
{
	List *raw = raw_parser(text, RAW_PARSE_DEFAULT);
	Oid *types = NULL;
	int ntypes = 0;
	Query *q;

	if (list_length(raw) != 1)
		return NULL;
	q = parse_analyze_varparams(linitial_node(RawStmt, raw), text, &types,
								&ntypes, NULL);
	return q->commandType == CMD_SELECT ? q : NULL;
}

/* The query id of text, parsed and analysed now, or 0. */
uint64
RulesTextQueryid(const char *text)
{
	Query *q = text_query(text);

	return q ? q->queryId : 0;
}

/* Append the OIDs of the relations node (a query) names to *(List **) context. */
static bool
named_relations(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*(List **) context = list_append_unique_oid(*(List **) context, rte->relid);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, named_relations, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, named_relations, context);
}

/*
 * Whether the rule's owner may have a rule on q as its text resolves now,
 * by check_may_create's rule: a superuser, a member of
 * cache_ext_rules_admin, or the owner of every relation the rewritten
 * query reads (views and the tables under them).  The names were checked
 * at creation only: a name that now resolves to another owner's relation
 * (the owner dropped or renamed its own) must not carry the rule there.
 * The relations it checks join *named.
 */
static bool
owner_may_rule(Oid owner, Query *q, List **named)
{
	Oid admin = get_role_oid(RULES_ADMIN_ROLE, true);
	List *relids = NIL;
	ListCell *lc;

	if (superuser_arg(owner) || (OidIsValid(admin) && has_privs_of_role(owner, admin)))
		return true;
	foreach(lc, QueryRewrite(copyObject(q)))
		(void) named_relations((Node *) lfirst(lc), &relids);
	/* an owner change of a table under a view loads the rules again too */
	*named = list_concat_unique_oid(*named, relids);
	if (relids == NIL)
		return false; /* as check_may_create: reading none needs the admin */
	foreach(lc, relids)
	{
		if (!pg_class_ownercheck(lfirst_oid(lc), owner))
			return false;
	}
	return true;
}

/* text_queryid's work as the rule's owner, under its search_path */
typedef struct RuleIdArgs
{
	const RuleRow *row;
	const char *text;
	uint64 queryid;
	List *relids; /* the relations it names, appended to */
} RuleIdArgs;

static void
rule_id_fn(void *arg)
{
	RuleIdArgs *a = (RuleIdArgs *) arg;
	Oid saved_user;
	int saved_sec;
	int nest = NewGUCNestLevel();

	/* an error undoes both with the subtransaction */
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(a->row->owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	(void) set_config_option("search_path", a->row->search_path, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/*
	 * Never wait for a lock on a rule's relation: loading runs at whatever
	 * statement comes first, which must not wait behind DDL on a relation
	 * it does not read (rule_queryid retries later).
	 */
	(void) set_config_option("lock_timeout", "1", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	{
		Query *q = text_query(a->text);

		a->queryid = q ? q->queryId : 0;
		if (q)
		{
			/* named first: an owner change makes the rules load again */
			(void) named_relations((Node *) q, &a->relids);
			if (!owner_may_rule(a->row->owner, q, &a->relids))
				a->queryid = 0;
		}
	}
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(saved_user, saved_sec);
}

/*
 * The query id of one of a rule's texts today, or 0 when it has none; the
 * relations it names join rules_relids.
 */
static uint64
rule_queryid(const RuleRow *row, const char *text)
{
	RuleIdArgs a;
	ErrorData *edata;
	MemoryContext old;

	a.row = row;
	a.text = text;
	a.queryid = 0;
	a.relids = NIL;
	edata = RunInSubtransaction(rule_id_fn, &a);
	if (edata != NULL)
	{
		/* a dropped table or role, say: the rule is inactive here */
		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			rules_retry_at = GetCurrentTimestamp() + USECS_PER_SEC;
		ereport(DEBUG1,
				(errmsg_internal("cache_ext: rule \"%s\" does not apply: %s",
								 row->name, edata->message)));
		FreeErrorData(edata);
		return 0;
	}
	old = MemoryContextSwitchTo(rules_cxt);
	rules_relids = list_concat_unique_oid(rules_relids, a.relids);
	MemoryContextSwitchTo(old);
	return a.queryid;
}

/* Read every row of the rules table (relid) into the current context. */
static List *
read_rule_rows(Oid relid)
{
	Relation rel = table_open(relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	Snapshot snap;
	TableScanDesc scan;
	HeapTuple tup;
	List *rows = NIL;

	if (desc->natts != RC_NCOLS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s is not as cache_ext 0.7 made it", RULES_TABLE),
				 errhint("Run ALTER EXTENSION cache_ext UPDATE.")));
	for (int i = 0; i < RC_NCOLS; i++)
		if (TupleDescAttr(desc, i)->atttypid != rule_column_types[i] ||
			TupleDescAttr(desc, i)->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s is not as cache_ext 0.7 made it", RULES_TABLE)));
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Datum v[RC_NCOLS];
		bool n[RC_NCOLS];
		RuleRow *r = palloc0(sizeof(RuleRow));

		heap_deform_tuple(tup, desc, v, n);
		if (n[RC_NAME] || n[RC_QUERY] || n[RC_SHAPE] || n[RC_OWNER] ||
			n[RC_SEARCH_PATH])
			continue;
		r->name = TextDatumGetCString(v[RC_NAME]);
		r->query = TextDatumGetCString(v[RC_QUERY]);
		r->shape = TextDatumGetCString(v[RC_SHAPE]);
		r->has_ttl = !n[RC_TTL];
		if (r->has_ttl)
			r->ttl = *DatumGetIntervalP(v[RC_TTL]);
		r->tags = n[RC_TAGS] ? NULL : DatumGetArrayTypePCopy(v[RC_TAGS]);
		r->owner = DatumGetObjectId(v[RC_OWNER]);
		r->search_path = TextDatumGetCString(v[RC_SEARCH_PATH]);
		if (strlen(r->name) >= NAMEDATALEN)
			continue;
		rows = lappend(rows, r);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return rows;
}

/* A rule's TTL in milliseconds under the ceiling, or -1 for the default. */
int64
RulesTtlMs(const Interval *iv, bool strict)
{
	int64 us = -1;

	/* bounds first, so the arithmetic cannot overflow */
	if (iv->month >= 0 && iv->month <= 12 && iv->day >= 0 && iv->day <= 366 &&
		iv->time >= 0 && iv->time <= (int64) 366 * USECS_PER_DAY)
		us = iv->time + (int64) iv->day * USECS_PER_DAY +
			(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (us < 1000 || us > (int64) 365 * USECS_PER_DAY)
	{
		if (strict)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ttl must be between 1 millisecond and 365 days")));
		return -1;
	}
	return us / 1000;
}

/* Enter row as a rule under its query ids (none: it does not apply). */
static void
add_rule(const RuleRow *row)
{
	uint64 ids[2];
	RuleDef *rule = NULL;
	MemoryContext old;

	ids[0] = rule_queryid(row, row->query);
	ids[1] = strcmp(row->shape, row->query) == 0 ? 0 : rule_queryid(row, row->shape);
	if (ids[0] == 0)
		rules_incomplete = true;
	old = MemoryContextSwitchTo(rules_cxt);
	for (int i = 0; i < 2; i++)
	{
		RuleById *e;
		bool found;

		if (ids[i] == 0)
			continue;
		e = hash_search(rules_hash, &ids[i], HASH_ENTER, &found);
		if (found)
			continue; /* another rule has the shape: that one applies */
		if (rule == NULL)
		{
			rule = palloc0(sizeof(RuleDef));
			strlcpy(rule->name, row->name, NAMEDATALEN);
			rule->ttl_ms = row->has_ttl ? RulesTtlMs(&row->ttl, false) : -1;
			if (row->tags != NULL)
			{
				Datum *elems;
				bool *nulls;
				int n;

				deconstruct_array(row->tags, TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &nulls, &n);
				rule->tags = palloc(sizeof(char *) * Max(n, 1));
				for (int j = 0; j < n && j < 64; j++)
					if (!nulls[j])
						rule->tags[rule->ntags++] = TextDatumGetCString(elems[j]);
			}
			rule->slot = RulesCountersSlot(rule->name, false);
		}
		e->rule = rule;
	}
	MemoryContextSwitchTo(old);
}

/* rules_load's work, in a subtransaction */
static void
load_fn(void *arg)
{
	List *rows = read_rule_rows(rules_relid);
	ListCell *lc;

	foreach(lc, rows)
		add_rule((RuleRow *) lfirst(lc));
}

/*
 * Load the rules of this database into rules_hash.  Never raises (but for
 * a cancel): a rules table that cannot be read means no rules, and every
 * statement runs as it would without them.
 */
static void
rules_load(void)
{
	uint64 seen = inval_count;

	if (rules_cxt != NULL)
		MemoryContextReset(rules_cxt);
	rules_hash = NULL;
	rules_relids = NIL;
	rules_incomplete = false;
	rules_retry_at = 0;
	rules_state = RULES_NONE;
	rules_relid = RulesTable();
	if (!OidIsValid(rules_relid))
		return;
	if (!LoadTableHash(&rules_cxt, "cache_ext rules", &rules_hash, sizeof(uint64),
					   sizeof(RuleById), load_fn, NULL, "cache rules",
					   "Statements run without the rules until " RULES_TABLE " changes."))
		return;
	if (rules_hash != NULL)
		rules_state = RULES_LOADED;
	/* changed while loading: load again at the next statement */
	if (seen != inval_count)
		rules_state = RULES_UNKNOWN;
}

/*
 * The rule whose shape has this query id, or NULL.  Loads the rules when
 * they changed; never raises but for a cancel.
 */
RuleDef *
RulesMatch(uint64 queryid)
{
	RuleById *e;

	if (!callbacks_registered)
	{
		CatalogInvalOnRelcache(rules_relcache_callback);
		CatalogInvalOnSyscache(RELNAMENSP, rules_syscache_callback);
		callbacks_registered = true;
	}
	if (queryid == 0)
		return NULL;
	if (rules_retry_at != 0 && rules_state != RULES_UNKNOWN &&
		GetCurrentTimestamp() >= rules_retry_at)
		rules_state = RULES_UNKNOWN;
	if (rules_state == RULES_UNKNOWN)
	{
		/*
		 * No database, or a transaction that can run nothing; or a
		 * serializable one, whose scan of the rules table would take a
		 * predicate lock (its statements are not served anyway).
		 */
		if (!IsTransactionState() || !OidIsValid(MyDatabaseId) ||
			IsolationIsSerializable())
			return NULL;
		rules_load();
	}
	if (rules_state == RULES_NONE || rules_hash == NULL)
		return NULL;
	e = hash_search(rules_hash, &queryid, HASH_FIND, NULL);
	return e ? e->rule : NULL;
}

PG_FUNCTION_INFO_V1(cache_ext_rules_changed);

/*
 * The statement trigger of cache_ext_rules and of cache_ext_policies: a
 * relcache invalidation of the table, so that every backend loads the
 * rules (the policies) again at its next statement after this transaction
 * commits.
 */
Datum
cache_ext_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cache_ext_rules_changed() may only run as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(cache_rules_stats);

/*
 * cache_rules_stats(): the counters of this database's rules: name, hits,
 * misses, bypasses, and milliseconds spent on hits and misses.  From
 * shared memory when preloaded, else this backend's own (counters()).
 */
Datum
cache_rules_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RulesShared *rs = counters();
	RuleCounters *copy = palloc(sizeof(RuleCounters) * RULES_MAX_COUNTED);
	Datum v[6];
	bool n[6] = {false, false, false, false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	/* this backend's own counters: its rules have slots once loaded */
	if (rules_shared == NULL)
		(void) RulesMatch(UINT64CONST(1));
	SpinLockAcquire(&rs->lock);
	memcpy(copy, rs->slot, sizeof(RuleCounters) * RULES_MAX_COUNTED);
	SpinLockRelease(&rs->lock);
	for (int i = 0; i < RULES_MAX_COUNTED; i++)
	{
		if (copy[i].dbid != MyDatabaseId)
			continue;
		v[0] = CStringGetTextDatum(copy[i].name);
		for (int s = 0; s < 3; s++)
			v[1 + s] = Int64GetDatum(copy[i].n[s]);
		v[4] = Float8GetDatum(copy[i].us[CALL_HIT] / 1000.0);
		v[5] = Float8GetDatum(copy[i].us[CALL_MISS] / 1000.0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}
