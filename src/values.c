/*-------------------------------------------------------------------------
 *
 * values.c
 *	  Application values: cache_set, cache_get, cache_delete,
 *	  cache_delete_namespace (and the bytea forms), values an application
 *	  keeps in Redis by namespace and key, with the key hashing, sealing,
 *	  size limit and generations of cached_query's entries
 *	  (docs/values.md).
 *
 * A value stores the values of the generations it depends on, read before
 * it was written: the server's, the database's, its namespace's and one per
 * tag.  It is served only while all of them are unchanged, so
 * cache_delete_namespace is one bump of the namespace's generation, and
 * cache_invalidate_tag (admin.c) invalidates tagged values with no code of
 * its own.  The fixed generations are read with the value in one round
 * trip (StoreLookupEntry); a value with tags costs a second one (MGET of
 * its tags' generations, which only the value names).
 *
 * Writes are immediate, not transactional: Redis is outside the
 * transaction.  Redis down makes reads return NULL and writes false, with
 * cache_status() saying why, unless cache_ext.values_strict asks for an
 * ERROR.  A namespace may be restricted to a role
 * (cache_ext_value_namespaces): the rule is read with a fresh snapshot at
 * every call, so a restriction is in force from the commit that made it.
 *
 * State (backend-local, this file's only): the setting
 * cache_ext.values_strict, and the rules table's OID (rules_relid, checked
 * at every use).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"

#include "cache_ext.h"
#include "commitq.h"
#include "entry.h"
#include "inval_internal.h"
#include "invalidate.h"
#include "keys.h"
#include "outbox.h"
#include "outcome.h"
#include "store/store.h"
#include "store/store_values.h"
#include "value_format.h"

/* the fixed generations every value depends on: server, database, namespace */
#define NFIXED 3

#define RULES_TABLE "cache_ext_value_namespaces"

static bool cache_ext_values_strict = false;

/* cache_ext.values_strict; called from _PG_init. */
void
ValuesDefineGucs(void)
{
	DefineCustomBoolVariable("cache_ext.values_strict",
							 "Make cache_get, cache_set and the other value functions raise an error when Redis cannot be used.",
							 "When off, reads return NULL and writes false, and cache_status() says why.",
							 &cache_ext_values_strict,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

/* The Redis key names of one value. */
typedef struct ValueNames
{
	char *rkey;
	uint8 fingerprint[CV_FINGERPRINT_LEN];
	char *fixed[NFIXED];
} ValueNames;

static void
value_names(const char *ns, const char *key, ValueNames *n)
{
	uint8 hash[CE_HASH_LEN];
	StringInfoData m;

	n->rkey = KeyValueName(ns, key, hash);
	/* the fingerprint binds the whole key name: prefix and database too */
	initStringInfo(&m);
	KeyAddString(&m, "cache_ext value fingerprint");
	KeyAddString(&m, n->rkey);
	KeyHash(&m, hash);
	memcpy(n->fingerprint, hash, CV_FINGERPRINT_LEN);
	pfree(m.data);
	n->fixed[0] = KeyServerGenName();
	n->fixed[1] = KeyDatabaseGenName();
	n->fixed[2] = KeyNamespaceGenName(ns);
}

/* cache_status()'s text for this call. */
static void
set_status(const char *text)
{
	CallOutcome o;

	memset(&o, 0, sizeof(o));
	o.status = CALL_BYPASS;
	o.text = text;
	OutcomeSetLast(&o);
}

/*
 * Redis could not do what fn asked: with cache_ext.values_strict an ERROR,
 * else the status "<label>: <why>" and the caller returns NULL or false.
 */
static void
values_failed(const char *fn, const char *label, const char *why)
{
	OutcomeClearLast();
	if (cache_ext_values_strict)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s could not use redis", fn),
				 errdetail_internal("%s", why),
				 errhint("Set cache_ext.values_strict to off to get NULL or false instead.")));
	set_status(psprintf("%s: %s", label, why));
}

/* Why Redis failed: the client's last failure, else why it is not used. */
static char *
redis_why(void)
{
	const char *why = StoreLastError();
	const char *unusable;

	if (why[0] == '\0' && !StoreUsable(&unusable) && unusable != NULL)
		why = unusable;
	return psprintf("redis unavailable (%s)", why[0] ? why : "no reason given");
}

/* ---- arguments ---- */

static char *
namespace_arg(FunctionCallInfo fcinfo)
{
	char *ns;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the namespace must not be null")));
	ns = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (ns[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the namespace must not be empty")));
	return ns;
}

static char *
key_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the key must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(1));
}

/*
 * The TTL in ms: NULL is cache_ext.default_ttl; any TTL is lowered to
 * cache_ext.max_ttl, as cached_query's are.  Values always expire: a value
 * made stale by a bump is removed by Redis only when its TTL runs out.
 */
static int64
ttl_arg(FunctionCallInfo fcinfo, int argno)
{
	Interval *iv;
	int64 us = -1;

	if (PG_ARGISNULL(argno))
		return (int64) Min(cache_ext_default_ttl, cache_ext_max_ttl) * 1000;
	iv = PG_GETARG_INTERVAL_P(argno);

	/*
	 * Bounds on each field first, so the arithmetic below cannot overflow;
	 * a field may be negative ('1 day -1 hour'): the sum is what counts.
	 */
	if (iv->month >= -12 && iv->month <= 12 && iv->day >= -366 && iv->day <= 366 &&
		iv->time >= -(int64) 366 * USECS_PER_DAY && iv->time <= (int64) 366 * USECS_PER_DAY)
		us = iv->time + (int64) iv->day * USECS_PER_DAY +
			(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (us < 1000 || us > (int64) 365 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be between 1 millisecond and 365 days")));
	return Min(us / 1000, (int64) cache_ext_max_ttl * 1000);
}

/* The digests of the tags given (duplicates dropped) into *digests. */
static int
tags_arg(FunctionCallInfo fcinfo, int argno, uint8 **digests)
{
	ArrayType *arr;
	Datum *tags;
	bool *nulls;
	int ntags;
	int n = 0;

	*digests = NULL;
	if (PG_ARGISNULL(argno))
		return 0;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &tags, &nulls, &ntags);
	if (ntags > CV_MAX_TAGS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d tags may be given, not %d", CV_MAX_TAGS, ntags)));
	*digests = palloc(Max(ntags, 1) * CV_TAG_DIGEST_LEN);
	for (int i = 0; i < ntags; i++)
	{
		uint8 d[CV_TAG_DIGEST_LEN];
		bool seen = false;

		if (nulls[i] || VARSIZE_ANY_EXHDR(DatumGetPointer(tags[i])) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tags must be non-empty and not null")));
		KeyTagDigest(TextDatumGetCString(tags[i]), d);
		for (int j = 0; j < n && !seen; j++)
			seen = memcmp(*digests + j * CV_TAG_DIGEST_LEN, d, CV_TAG_DIGEST_LEN) == 0;
		if (!seen)
			memcpy(*digests + (n++) * CV_TAG_DIGEST_LEN, d, CV_TAG_DIGEST_LEN);
	}
	return n;
}

/* ---- namespaces restricted to a role ---- */

/*
 * Raise unless the current user may use namespace ns: a namespace with a
 * rule in cache_ext_value_namespaces only by roles that have the
 * privileges of the rule's role (superusers have every role's).  The rule
 * is read with a fresh snapshot (a non-catalog table's scan takes one), by
 * the primary key, whose column has collation "C": bytes compared.  Fails
 * closed: no rules table, no access.
 */
/*
 * The rules table's OID.  Remembered per backend (two catalog scans saved
 * per call) and checked at every use through the syscache: a relation of
 * that OID with that name in that schema, else looked up again (the
 * extension was dropped and created again).
 */
static Oid
rules_relid(void)
{
	static Oid relid = InvalidOid;
	static Oid nsp = InvalidOid;
	char *name;

	if (OidIsValid(relid))
	{
		name = get_rel_name(relid);
		if (name != NULL && strcmp(name, RULES_TABLE) == 0 &&
			get_rel_namespace(relid) == nsp)
			return relid;
	}
	nsp = extension_namespace(NULL);
	relid = OidIsValid(nsp) ? get_relname_relid(RULES_TABLE, nsp) : InvalidOid;
	return relid;
}

static void
check_namespace(const char *ns)
{
	Oid relid = rules_relid();
	Relation rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tup;
	Oid role = InvalidOid;
	Oid index;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cache_ext's table of namespace rules does not exist"),
				 errhint("Run ALTER EXTENSION cache_ext UPDATE.")));
	rel = table_open(relid, AccessShareLock);
	index = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(index))
		elog(ERROR, "%s has no primary key", RULES_TABLE);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(ns));
	scan = systable_beginscan(rel, index, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool isnull;
		Datum d = heap_getattr(tup, 2, RelationGetDescr(rel), &isnull);

		/* a rule without a role admits nobody but superusers */
		role = isnull ? InvalidOid : DatumGetObjectId(d);
		if (!OidIsValid(role))
			role = BOOTSTRAP_SUPERUSERID;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (OidIsValid(role) && !has_privs_of_role(GetUserId(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for cache namespace \"%s\"", ns),
				 errdetail("The namespace is restricted to members of role \"%s\".",
						   GetUserNameFromId(role, true) ? GetUserNameFromId(role, true) : "(dropped)"),
				 errhint("GRANT that role to the caller, or use another namespace.")));
}

/* ---- reading ---- */

typedef enum ValueReadResult
{
	VR_OK,
	VR_STALE,
	VR_CORRUPT,
	VR_WRONG_KIND
} ValueReadResult;

/* What read_cb needs and gives back. */
typedef struct ValueRead
{
	ValueNames names;
	uint8 kind;		 /* the kind asked for */
	char **cur_vals; /* the fixed generations' current values */
	size_t *cur_lens;
	const char *problem; /* VR_CORRUPT: why */
	int ntags;			 /* VR_OK: the value's tags ... */
	uint8 *tags;		 /* ... digests */
	char **tag_vals;	 /* ... and generations, as stored */
	size_t *tag_lens;
	char *data; /* VR_OK: the data, palloc'd, NUL after it */
	size_t data_len;
} ValueRead;

/*
 * The store's StoreDecodeFn for a value: open it (authenticated, when
 * sealed; a value that is not sealed is refused when a key file is set),
 * parse it strictly, check that it belongs to this key and that its fixed
 * generations are the current ones, and copy out what the caller needs.
 * Returns a ValueReadResult.
 */
static int
read_cb(char *raw, size_t len, void *arg)
{
	ValueRead *r = (ValueRead *) arg;
	char *buf = raw;
	size_t blen = len;
	CvValueView v;
	const uint8 *g;

	if (KeyEncryptionOn() || EntryIsSealed(raw, len))
		buf = EntryOpen(raw, len, r->names.rkey, &blen, &r->problem);
	if (buf == NULL)
		return VR_CORRUPT;
	r->problem = CvValueParse((const uint8 *) buf, blen, &v);
	if (r->problem != NULL)
		return VR_CORRUPT;
	if (memcmp(v.fingerprint, r->names.fingerprint, CV_FINGERPRINT_LEN) != 0)
	{
		r->problem = "value belongs to another key";
		return VR_CORRUPT;
	}
	if (v.ngens != NFIXED)
	{
		r->problem = "value has a generation count cache_ext never writes";
		return VR_CORRUPT;
	}
	g = v.gens;
	for (int i = 0; i < NFIXED; i++)
	{
		if (g[0] != r->cur_lens[i] || memcmp(g + 1, r->cur_vals[i], g[0]) != 0)
			return VR_STALE;
		g += 1 + g[0];
	}
	if (v.kind != r->kind)
		return VR_WRONG_KIND;
	r->ntags = v.ntags;
	r->tags = palloc(Max(v.ntags, 1) * CV_TAG_DIGEST_LEN);
	memcpy(r->tags, v.tags, (size_t) v.ntags * CV_TAG_DIGEST_LEN);
	r->tag_vals = palloc(sizeof(char *) * Max(v.ntags, 1));
	r->tag_lens = palloc(sizeof(size_t) * Max(v.ntags, 1));
	for (int i = 0; i < v.ntags; i++)
	{
		r->tag_vals[i] = pnstrdup((const char *) g + 1, g[0]);
		r->tag_lens[i] = g[0];
		g += 1 + g[0];
	}
	r->data = palloc(v.data_len + 1);
	memcpy(r->data, v.data, v.data_len);
	r->data[v.data_len] = '\0';
	r->data_len = v.data_len;
	return VR_OK;
}

/*
 * Whether the generations of the value's tags are still the ones it was
 * stored with: a second round trip, after the bumps of those tags on their
 * way (commitq.c).  *down when Redis could not say.
 */
static bool
tags_current(ValueRead *r, bool *down)
{
	char **keys = palloc(sizeof(char *) * r->ntags);
	char **vals = palloc0(sizeof(char *) * r->ntags);
	size_t *lens = palloc0(sizeof(size_t) * r->ntags);
	StoreGensState state;

	*down = false;
	for (int i = 0; i < r->ntags; i++)
		keys[i] = KeyTagGenNameFromDigest(r->tags + i * CV_TAG_DIGEST_LEN);
	if (!RecoveryInProgress() &&
		!CommitQueueWaitDelivered(keys, r->ntags, CommitQueueWaitBudget()))
	{
		*down = true;
		return false;
	}
	if (StoreReadGenerations(keys, r->ntags, vals, lens, &state) != STORE_OK)
	{
		*down = true;
		return false;
	}
	if (state != STORE_GENS_VALID)
		return false;
	for (int i = 0; i < r->ntags; i++)
		if (lens[i] != r->tag_lens[i] || memcmp(vals[i], r->tag_vals[i], lens[i]) != 0)
			return false;
	return true;
}

/*
 * Why Redis may not be asked for a value now (NULL: it may): not usable
 * (breaker, no URL), hits blocked by undelivered invalidations or a
 * standby's lease, a server that does not say its run_id.
 */
static const char *
read_blocked(void)
{
	const char *why;

	if (!StoreUsable(&why))
		return psprintf("redis unavailable (%s)", why);
	if (InvalHitsBlocked(true))
		return InvalHitsBlockedWhy()->detail;
	if (InvalRedisBlind())
		return REASON_BLIND;
	return NULL;
}

/*
 * Read the value of (ns, key) of this kind into *r.  Returns true with
 * r->data on a hit; otherwise false, with the status set (or an ERROR
 * under cache_ext.values_strict when Redis could not answer).  A corrupt
 * value is counted in cache_stats.corrupt and deleted.
 *
 * Long because: the fences before the round trip (as cached_query's
 * lookup), the round trip, its verdict, the tags' round trip and the
 * fence after it share one set of outcomes, in this order.
 */
static bool
value_read(const char *fn, const char *ns, const char *key, uint8 kind,
		   ValueRead *r)
{
	ValueNames names;
	StoreLookup sl;
	const char *why;
	char *mark_key = NULL;
	XLogRecPtr replay = InvalidXLogRecPtr;
	uint64 epoch;
	int res = VR_STALE;
	bool down = false;

	check_namespace(ns);
	value_names(ns, key, &names);
	memset(r, 0, sizeof(*r));
	r->names = names;
	r->kind = kind;
	r->cur_vals = palloc0(sizeof(char *) * NFIXED);
	r->cur_lens = palloc0(sizeof(size_t) * NFIXED);

	if ((why = read_blocked()) != NULL)
	{
		values_failed(fn, "BYPASS", why);
		return false;
	}
	epoch = InvalEpoch();
	if (RecoveryInProgress())
	{
		/* a standby: the primary's watermark must cover what it replayed */
		replay = GetCurrentReplayRecPtr(NULL);
		mark_key = CommitQueueMarkKey();
		if (mark_key == NULL)
		{
			values_failed(fn, "BYPASS", "hot standby: no invalidation watermark to check");
			return false;
		}
	}
	else if (!CommitQueueWaitDelivered(names.fixed, NFIXED, CommitQueueWaitBudget()))
	{
		values_failed(fn, "BYPASS", "invalidations on their way to redis did not arrive in time");
		return false;
	}

	StoreLookupEntry(names.rkey, names.fixed, NFIXED, (size_t) cache_ext_max_entry_size,
					 false, mark_key, r->cur_vals, r->cur_lens, read_cb, r, &sl);
	if (sl.verdict == STORE_LOOKUP_DOWN)
	{
		values_failed(fn, "BYPASS", redis_why());
		return false;
	}
	if (mark_key != NULL && !CommitQueueWatermarkCovers(sl.has_mark, sl.mark, replay))
	{
		values_failed(fn, "BYPASS", CommitQueueWatermarkWhy());
		return false;
	}
	switch (sl.verdict)
	{
		case STORE_LOOKUP_DOWN:
		case STORE_LOOKUP_MISS:
			set_status("MISS");
			return false;
		case STORE_LOOKUP_CORRUPT:
			if (sl.entry == STORE_ENTRY_TOO_LARGE)
			{
				/* this session's limit may be lower than the writer's: keep it */
				set_status("MISS (value larger than cache_ext.max_entry_size)");
				return false;
			}
			r->problem = sl.problem;
			res = VR_CORRUPT;
			break;
		case STORE_LOOKUP_STALE:
			res = VR_STALE;
			break;
		case STORE_LOOKUP_DECODE:
			res = sl.decoded;
			break;
	}
	if (res == VR_OK && r->ntags > 0 && !tags_current(r, &down))
		res = VR_STALE;
	if (down)
	{
		values_failed(fn, "BYPASS", redis_why());
		return false;
	}
	/* as for hits: a restart or a failed bump seen since blocks this one */
	if (res != VR_CORRUPT && InvalHitsBlockedSince(epoch))
	{
		values_failed(fn, "BYPASS", InvalHitsBlockedReason());
		return false;
	}
	switch (res)
	{
		case VR_OK:
			set_status("HIT");
			return true;
		case VR_WRONG_KIND:
			set_status(kind == CV_KIND_JSONB ?
						   "MISS (the value is a bytea: read it with cache_get_bytea)" :
						   "MISS (the value is a jsonb: read it with cache_get)");
			return false;
		case VR_CORRUPT:
			CacheStatsAdd(CS_CORRUPT, 1);
			StoreDeleteEntry(names.rkey);
			set_status(psprintf("MISS (corrupt value deleted: %s)", r->problem));
			return false;
		default:
			set_status("MISS (invalidated)");
			return false;
	}
}

/*
 * The jsonb of a value's text, or NULL when the text is not one (counted
 * and deleted as corrupt, *problem says why): bytes from Redis are parsed
 * as jsonb_in parses a client's, and its errors on bad input are caught.
 * jsonb_in holds no locks or buffers when it rejects its input, so
 * dropping such an error without a subtransaction is safe (entry.c does
 * the same for built-in input functions).
 */
static Datum
jsonb_of_text(char *data, size_t len, const char **problem)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile Datum result = (Datum) 0;

	*problem = NULL;
	if (!pg_verifymbstr(data, (int) len, true))
	{
		*problem = "value text is not valid in the database encoding";
		return (Datum) 0;
	}
	PG_TRY();
	{
		result = DirectFunctionCall1(jsonb_in, CStringGetDatum(data));
	}
	PG_CATCH();
	{
		ErrorData *edata;
		int category;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		if (category != ERRCODE_DATA_EXCEPTION &&
			category != ERRCODE_PROGRAM_LIMIT_EXCEEDED &&
			category != ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		*problem = "value text is not jsonb";
	}
	PG_END_TRY();
	return result;
}

/* ---- writing ---- */

/*
 * Store data as the value of (ns, key): read (initialising) the current
 * generations of the fixed scopes and the tags in one round trip, then SET
 * the value with its TTL in another.  Returns true when Redis took it,
 * else false with the status (or an ERROR under cache_ext.values_strict).
 * A value larger than cache_ext.max_entry_size is an ERROR, before Redis
 * is asked.
 */
static bool
value_write(const char *fn, const char *ns, const char *key, uint8 kind,
			const char *data, size_t data_len, int64 ttl_ms,
			const uint8 *tags, int ntags)
{
	ValueNames names;
	int n = NFIXED + ntags;
	char **keys = palloc(sizeof(char *) * n);
	int *which = palloc(sizeof(int) * n);
	char **vals = palloc0(sizeof(char *) * n);
	size_t *lens = palloc0(sizeof(size_t) * n);
	char fresh[33];
	CvValueParts p;
	size_t size;
	uint8 *buf;
	const char *why;
	char *failed;
	uint64 estimate;

	check_namespace(ns);
	/* with generations as cache_ext writes them (32 bytes): known early */
	estimate = (uint64) CV_HEADER_SIZE + (uint64) ntags * CV_TAG_DIGEST_LEN +
		(uint64) n * 33 + data_len + (KeyEncryptionOn() ? CE_SEALED_OVERHEAD : 0);
	if (estimate > (uint64) cache_ext_max_entry_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large to cache: %llu bytes stored, cache_ext.max_entry_size is %d",
						(unsigned long long) estimate, cache_ext_max_entry_size),
				 errhint("Store a smaller value, or raise cache_ext.max_entry_size.")));

	value_names(ns, key, &names);
	for (int i = 0; i < NFIXED; i++)
		keys[i] = names.fixed[i];
	for (int i = 0; i < ntags; i++)
		keys[NFIXED + i] = KeyTagGenNameFromDigest(tags + i * CV_TAG_DIGEST_LEN);
	for (int i = 0; i < n; i++)
		which[i] = i;

	if (!StoreUsable(&why))
	{
		values_failed(fn, "NOT STORED", psprintf("redis unavailable (%s)", why));
		return false;
	}
	InvalFreshValue(fresh);
	if (!StoreInitGenerations(keys, which, n, fresh, vals, lens))
	{
		values_failed(fn, "NOT STORED", redis_why());
		return false;
	}

	p.kind = kind;
	p.fingerprint = names.fingerprint;
	p.ngens = NFIXED;
	p.ntags = ntags;
	p.tags = tags;
	p.gens = (const char *const *) vals;
	p.gens_lens = lens;
	p.data = (const uint8 *) data;
	p.data_len = data_len;
	size = CvValueSize(&p);
	if (size == 0 ||
		size + (KeyEncryptionOn() ? CE_SEALED_OVERHEAD : 0) > (size_t) cache_ext_max_entry_size)
	{
		/* generations longer than cache_ext writes them: not this value's fault */
		values_failed(fn, "NOT STORED", "its generations make it larger than cache_ext.max_entry_size");
		return false;
	}
	buf = palloc(size);
	CvValueBuild(&p, buf);
	if (KeyEncryptionOn())
	{
		StringInfoData sealed;

		EntrySeal((const char *) buf, size, names.rkey, &sealed);
		failed = StorePutEntry(names.rkey, sealed.data, sealed.len, ttl_ms);
	}
	else
		failed = StorePutEntry(names.rkey, (const char *) buf, size, ttl_ms);
	if (failed != NULL)
	{
		values_failed(fn, "NOT STORED", failed);
		return false;
	}
	set_status("STORED");
	return true;
}

/* ---- the SQL functions ---- */

PG_FUNCTION_INFO_V1(cache_set);

/*
 * cache_set(namespace, key, value jsonb, ttl, tags) RETURNS boolean: true
 * when Redis took the value (docs/values.md).
 */
Datum
cache_set(PG_FUNCTION_ARGS)
{
	char *ns = namespace_arg(fcinfo);
	char *key = key_arg(fcinfo);
	Jsonb *jb;
	char *text;
	int64 ttl_ms;
	uint8 *tags;
	int ntags;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the value must not be null"),
				 errhint("Store 'null'::jsonb for a JSON null, or remove the value with cache_delete.")));
	jb = PG_GETARG_JSONB_P(2);
	ttl_ms = ttl_arg(fcinfo, 3);
	ntags = tags_arg(fcinfo, 4, &tags);
	text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	PG_RETURN_BOOL(value_write("cache_set", ns, key, CV_KIND_JSONB, text, strlen(text),
							   ttl_ms, tags, ntags));
}

PG_FUNCTION_INFO_V1(cache_set_bytea);

/* cache_set_bytea: cache_set for bytea values. */
Datum
cache_set_bytea(PG_FUNCTION_ARGS)
{
	char *ns = namespace_arg(fcinfo);
	char *key = key_arg(fcinfo);
	bytea *b;
	int64 ttl_ms;
	uint8 *tags;
	int ntags;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the value must not be null"),
				 errhint("Remove a value with cache_delete.")));
	b = PG_GETARG_BYTEA_PP(2);
	ttl_ms = ttl_arg(fcinfo, 3);
	ntags = tags_arg(fcinfo, 4, &tags);
	PG_RETURN_BOOL(value_write("cache_set_bytea", ns, key, CV_KIND_BYTES, VARDATA_ANY(b),
							   VARSIZE_ANY_EXHDR(b), ttl_ms, tags, ntags));
}

PG_FUNCTION_INFO_V1(cache_get);

/* cache_get(namespace, key) RETURNS jsonb: NULL unless a current value. */
Datum
cache_get(PG_FUNCTION_ARGS)
{
	char *ns = namespace_arg(fcinfo);
	char *key = key_arg(fcinfo);
	ValueRead r;
	Datum result;
	const char *problem;

	if (!value_read("cache_get", ns, key, CV_KIND_JSONB, &r))
		PG_RETURN_NULL();
	result = jsonb_of_text(r.data, r.data_len, &problem);
	if (problem != NULL)
	{
		CacheStatsAdd(CS_CORRUPT, 1);
		StoreDeleteEntry(r.names.rkey);
		set_status(psprintf("MISS (corrupt value deleted: %s)", problem));
		PG_RETURN_NULL();
	}
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(cache_get_bytea);

/* cache_get_bytea: cache_get for values stored by cache_set_bytea. */
Datum
cache_get_bytea(PG_FUNCTION_ARGS)
{
	char *ns = namespace_arg(fcinfo);
	char *key = key_arg(fcinfo);
	ValueRead r;
	bytea *b;

	if (!value_read("cache_get_bytea", ns, key, CV_KIND_BYTES, &r))
		PG_RETURN_NULL();
	b = (bytea *) palloc(VARHDRSZ + r.data_len);
	SET_VARSIZE(b, VARHDRSZ + r.data_len);
	memcpy(VARDATA(b), r.data, r.data_len);
	PG_RETURN_BYTEA_P(b);
}

PG_FUNCTION_INFO_V1(cache_delete);

/*
 * cache_delete(namespace, key) RETURNS boolean: true when Redis held a
 * value under the key (current or already invalidated) and removed it;
 * false when it held none, or (with a WARNING) when Redis could not be
 * asked: the value may then still be served once Redis is back.
 */
Datum
cache_delete(PG_FUNCTION_ARGS)
{
	char *ns = namespace_arg(fcinfo);
	char *key = key_arg(fcinfo);
	ValueNames names;
	bool deleted;
	StoreStatus st;

	check_namespace(ns);
	value_names(ns, key, &names);
	st = StoreValueDelete(names.rkey, &deleted);
	if (st != STORE_OK)
	{
		char *why = st == STORE_UNAVAILABLE ? redis_why() :
											  pstrdup("redis refused UNLINK or answered it oddly");

		values_failed("cache_delete", "NOT DELETED", why);
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("cache_delete could not delete the value"),
				 errdetail_internal("%s", why)));
		PG_RETURN_BOOL(false);
	}
	set_status(deleted ? "DELETED" : "NOT FOUND");
	PG_RETURN_BOOL(deleted);
}

PG_FUNCTION_INFO_V1(cache_delete_namespace);

/*
 * cache_delete_namespace(namespace) RETURNS boolean: bump the namespace's
 * generation (O(1)): every value stored in it before is stale from now
 * on, in every session, whether this transaction commits or not.  When
 * Redis cannot take the bump it goes to the outbox, as a commit's bumps do
 * (C3): this server serves no value and no hit until it is delivered; true,
 * with a WARNING (an ERROR under cache_ext.values_strict).  False, with a
 * WARNING, only when there is no outbox (not preloaded): the values are
 * then served again once Redis is back.
 */
Datum
cache_delete_namespace(PG_FUNCTION_ARGS)
{
	char *ns = namespace_arg(fcinfo);
	char *gen;
	char fresh[33];
	bool bumped;

	check_namespace(ns);
	gen = KeyNamespaceGenName(ns);
	InvalFreshValue(fresh);
	bumped = StoreBump(&gen, 1, fresh, NULL, NULL, cache_ext_command_timeout);
	if (!bumped && InvalShmemReady())
	{
		char *why = redis_why();

		OutboxAdd(&gen, 1);
		values_failed("cache_delete_namespace", "INVALIDATED (deferred)", why);
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("cache_delete_namespace could not reach redis: the invalidation of namespace \"%s\" is kept in the outbox", ns),
				 errdetail_internal("%s", why),
				 errhint("This server serves no cached value or result until Redis takes it.")));
		PG_RETURN_BOOL(true);
	}
	if (!bumped)
	{
		char *why = redis_why();

		values_failed("cache_delete_namespace", "NOT INVALIDATED", why);
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("cache_delete_namespace could not invalidate namespace \"%s\"", ns),
				 errdetail_internal("%s", why),
				 errhint("Its values are still served until it is invalidated: call it again when Redis is back.")));
		PG_RETURN_BOOL(false);
	}
	CacheStatsAdd(CS_BUMPS_SENT, 1);
	set_status("INVALIDATED");
	PG_RETURN_BOOL(true);
}
