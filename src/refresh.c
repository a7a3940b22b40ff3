/*-------------------------------------------------------------------------
 *
 * refresh.c
 *	  Refresh-ahead's registry: a call made with cache_ext.refresh_ahead on
 *	  whose result was stored records what it takes to make the same call
 *	  again (database, role, query text, parameters, options and the
 *	  settings its key depends on); hits count how hot it is; the worker
 *	  of its database (refresh_worker.c, started by refresh_sched.c)
 *	  recomputes hot entries shortly before their TTL ends.  Also the
 *	  settings and cache_refresh_stats().
 *
 * Shared state: refresh_shared (refresh.h says who writes what, under
 * which lock).  Backend-local: the key of the last entry a call of this
 * backend stored (for the worker's check that it stored the same key).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "cache_ext.h"
#include "call.h"
#include "refresh.h"

RefreshShared *refresh_shared = NULL;
bool cache_ext_refresh_ahead = false;
double cache_ext_refresh_budget = 0.1;
int cache_ext_refresh_max_per_pass = 8;
int cache_ext_refresh_max_workers = 2;

/* the key of the last entry this backend stored, if any */
static bool last_stored_valid = false;
static uint8 last_stored[CE_HASH_LEN];

void
RefreshDefineGucs(void)
{
	DefineCustomBoolVariable("cache_ext.refresh_ahead",
							 "Register the results this session stores for refresh-ahead by the background worker.",
							 "Superuser: a registered call runs again in the background worker, so registering is a trust decision (a wrapper function of a superuser can SET it). Needs cache_ext in shared_preload_libraries.",
							 &cache_ext_refresh_ahead,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("cache_ext.refresh_budget",
							 "Fraction of wall time the refresh-ahead worker may spend recomputing entries.",
							 NULL,
							 &cache_ext_refresh_budget,
							 0.1, 0.001, 1.0,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("cache_ext.refresh_max_per_pass",
							"Most entries the refresh-ahead worker recomputes in one pass (every 500 ms at most).",
							NULL,
							&cache_ext_refresh_max_per_pass,
							8, 1, REFRESH_SLOTS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	/*
	 * A reload, not a restart: the table of workers has room for every
	 * database that can hold slots, and the cap is read at each start
	 * (workers above a lowered cap end when idle or at their turn's end).
	 */
	DefineCustomIntVariable("cache_ext.refresh_max_workers",
							"Most refresh-ahead workers (one per database) running at once.",
							"Never more than max_worker_processes; databases beyond it take turns.",
							&cache_ext_refresh_max_workers,
							2, 1, REFRESH_SLOTS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

void
RefreshShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(RefreshShared)));
	RequestNamedLWLockTranche("cache_ext refresh", 1);
}

/* Called with AddinShmemInitLock held. */
void
RefreshShmemInit(void)
{
	bool found;

	refresh_shared = ShmemInitStruct("cache_ext refresh", sizeof(RefreshShared),
									 &found);
	if (found)
		return;
	memset(refresh_shared, 0, sizeof(RefreshShared));
	refresh_shared->lock = &GetNamedLWLockTranche("cache_ext refresh")[0].lock;
	pg_atomic_init_u32(&refresh_shared->nused, 0);
	for (int i = 0; i < RC_NCOUNTERS; i++)
		pg_atomic_init_u64(&refresh_shared->counters[i], 0);
	for (int i = 0; i < REFRESH_SLOTS; i++)
		pg_atomic_init_u32(&refresh_shared->slots[i].hits, 0);
}

void
RefreshCount(RefreshCounter c)
{
	if (refresh_shared)
		pg_atomic_fetch_add_u64(&refresh_shared->counters[c], 1);
}

/* The slot of the entry key hash in this database, or NULL; lock held. */
static RefreshSlot *
find_slot(const uint8 *hash)
{
	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshSlot *s = &refresh_shared->slots[i];

		if (s->used && s->dboid == MyDatabaseId &&
			memcmp(s->hash, hash, CE_HASH_LEN) == 0)
			return s;
	}
	return NULL;
}

/* Free a slot; the lock is held exclusively. */
static void
free_slot(RefreshSlot *s)
{
	s->used = false;
	s->busy = false;
	pg_atomic_fetch_sub_u32(&refresh_shared->nused, 1);
}

/*
 * Free every slot of database dboid that no job is running, counted as
 * dropped; the lock is held exclusively.  For a database whose worker
 * could not connect to it (refresh_sched.c), and for a database just
 * created, whose OID may be that of a dropped database whose slots were
 * not reclaimed yet (CREATE DATABASE ... OID n, or OID wraparound): its
 * roles' calls must not run in the new database (review-refreshdb B).
 */
void
RefreshFreeDatabase(Oid dboid)
{
	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshSlot *s = &refresh_shared->slots[i];

		if (s->used && !s->busy && s->dboid == dboid)
		{
			free_slot(s);
			RefreshCount(RC_DROPPED);
		}
	}
}

/*
 * From the utility hook after CREATE DATABASE (the lock is not held):
 * RefreshFreeDatabase, and the dropped database's worker entry, unless a
 * start of it is under way, is forgotten (its budget does not hold the
 * new database).
 */
void
RefreshDatabaseCreated(Oid dboid)
{
	RefreshWorker *w;

	if (refresh_shared == NULL || !OidIsValid(dboid))
		return;
	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	RefreshFreeDatabase(dboid);
	w = RefreshWorkerOf(dboid);
	if (w != NULL && !w->registered && w->pid == 0)
		w->dboid = InvalidOid;
	LWLockRelease(refresh_shared->lock);
}

/* Drop the job of the entry key hash, if any (the worker, after a failure). */
void
RefreshFree(const uint8 *hash)
{
	RefreshSlot *s;

	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	s = find_slot(hash);
	if (s)
		free_slot(s);
	LWLockRelease(refresh_shared->lock);
}

/* The key of the last entry this backend stored, once; false when none. */
bool
RefreshLastStored(uint8 *hash)
{
	bool had = last_stored_valid;

	if (had)
		memcpy(hash, last_stored, CE_HASH_LEN);
	last_stored_valid = false;
	return had;
}

static void
put_string(StringInfo b, const char *s)
{
	int len = strlen(s);

	pq_sendint32(b, len);
	pq_sendbytes(b, s, len);
}

/*
 * The session's settings that a worker must apply to compute the same
 * key: every setting a session may change and that is not at its built-in
 * default, as text that set_config_option takes back (integers in their
 * base unit, reals with every digit), each with whether a user or a
 * superuser (or the configuration) set it.  A superset of the keyed ones;
 * the worker checks that the settings digest comes out the same.
 * Secrets, the role and transaction settings stay out.
 */
static void
put_settings(StringInfo b)
{
	struct config_generic **vars = get_guc_variables();
	int nvars = GetNumConfigOptions();
	int countpos = b->len;
	int n = 0;

	pq_sendint32(b, 0);
	for (int j = 0; j < nvars; j++)
	{
		struct config_generic *conf = vars[j];
		char buf[64];
		const char *v = buf;

		if (conf->source == PGC_S_DEFAULT ||
			(conf->context != PGC_USERSET && conf->context != PGC_SUSET) ||
			(conf->flags & (GUC_SUPERUSER_ONLY | GUC_NO_RESET_ALL | GUC_NOT_WHILE_SEC_REST)) ||
			strcmp(conf->name, "client_encoding") == 0)
			continue;
		switch (conf->vartype)
		{
			case PGC_BOOL:
				v = *((struct config_bool *) conf)->variable ? "on" : "off";
				break;
			case PGC_INT:
				snprintf(buf, sizeof(buf), "%d", *((struct config_int *) conf)->variable);
				break;
			case PGC_REAL:
				snprintf(buf, sizeof(buf), "%.17g", *((struct config_real *) conf)->variable);
				break;
			case PGC_ENUM:
				v = config_enum_lookup_by_value((struct config_enum *) conf,
												*((struct config_enum *) conf)->variable);
				break;
			case PGC_STRING:
				v = *((struct config_string *) conf)->variable;
				v = v ? v : "";
				break;
		}
		put_string(b, conf->name);
		put_string(b, v);
		/*
		 * What set it: a user's value is applied with a user's rights; a
		 * non-superuser's startup options (PGC_BACKEND) are a user's too,
		 * or a placeholder from them would become a superuser's value.
		 */
		pq_sendbyte(b, (conf->scontext == PGC_USERSET || conf->scontext == PGC_BACKEND) ? 0 : 1);
		n++;
	}
	n = pg_hton32(n);
	memcpy(b->data + countpos, &n, sizeof(n));
}

/*
 * What the worker needs to make the call again, into b: the query, the
 * settings, the parameters (binary, with their types) and the options.
 * False when it cannot be recorded: a parameter type with no binary send
 * and receive, or options naming depends_on (their results are keyed to
 * the session).
 */
static bool
build_payload(StringInfo b, const char *query, const CallParams *params,
			  const CallOptions *opts)
{
	if (opts->has_depends_on)
		return false;
	put_string(b, query);
	put_settings(b);
	pq_sendint32(b, params->n);
	for (int i = 0; i < params->n; i++)
	{
		Oid send = InvalidOid;
		Oid recv = InvalidOid;
		HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(params->types[i]));
		bytea *bytes;

		if (HeapTupleIsValid(tup))
		{
			send = ((Form_pg_type) GETSTRUCT(tup))->typsend;
			recv = ((Form_pg_type) GETSTRUCT(tup))->typreceive;
			ReleaseSysCache(tup);
		}
		if (!OidIsValid(send) || !OidIsValid(recv))
			return false;
		pq_sendint32(b, params->types[i]);
		pq_sendbyte(b, params->nulls[i] ? 1 : 0);
		if (params->nulls[i])
			continue;
		bytes = OidSendFunctionCall(send, params->values[i]);
		pq_sendint32(b, VARSIZE_ANY_EXHDR(bytes));
		pq_sendbytes(b, VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
		if (b->len > REFRESH_PAYLOAD)
			return false;
	}
	pq_sendint64(b, opts->ttl_ms);
	put_string(b, opts->namespace ? opts->namespace : "");
	pq_sendint32(b, opts->ntags);
	for (int i = 0; i < opts->ntags; i++)
		put_string(b, opts->tags[i]);
	return b->len <= REFRESH_PAYLOAD;
}

/*
 * Free the slots of every database that no longer exists (dropped while
 * entries of it were registered), so that they do not hold registry
 * slots until their TTL ends; never those of a database whose worker
 * starts or runs (a worker connected to it stops the DROP; one starting
 * finds it gone and exits).  Needs a transaction (the catalog is read);
 * the lock is not held.
 */
void
RefreshReclaimDropped(void)
{
	Oid dbs[REFRESH_SLOTS];
	int n = 0;
	int gone = 0;

	LWLockAcquire(refresh_shared->lock, LW_SHARED);
	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshSlot *s = &refresh_shared->slots[i];
		int j = 0;

		if (!s->used || s->dboid == MyDatabaseId)
			continue;
		while (j < n && dbs[j] != s->dboid)
			j++;
		if (j == n)
			dbs[n++] = s->dboid;
	}
	LWLockRelease(refresh_shared->lock);
	for (int j = 0; j < n; j++)
		if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbs[j])))
			dbs[gone++] = dbs[j];
	if (gone == 0)
		return;
	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	for (int j = 0; j < gone; j++)
	{
		RefreshWorker *w = RefreshWorkerOf(dbs[j]);

		if (w != NULL && (w->registered || w->pid != 0))
			continue;
		if (w != NULL)
			w->dboid = InvalidOid;
		for (int i = 0; i < REFRESH_SLOTS; i++)
		{
			RefreshSlot *s = &refresh_shared->slots[i];

			if (s->used && !s->busy && s->dboid == dbs[j])
				free_slot(s);
		}
	}
	LWLockRelease(refresh_shared->lock);
}

/* The slots the current user holds; the lock is held. */
static int
role_slots(void)
{
	Oid role = GetUserId();
	int n = 0;

	for (int i = 0; i < REFRESH_SLOTS; i++)
		if (refresh_shared->slots[i].used && refresh_shared->slots[i].roleid == role)
			n++;
	return n;
}

/* The slots this database holds; the lock is held. */
static int
database_slots(void)
{
	int n = 0;

	for (int i = 0; i < REFRESH_SLOTS; i++)
		if (refresh_shared->slots[i].used && refresh_shared->slots[i].dboid == MyDatabaseId)
			n++;
	return n;
}

/*
 * Register a stored entry (the lock is not held): refused when the call
 * runs under a role the session did not take itself, the call cannot be
 * recorded, the role holds REFRESH_ROLE_SLOTS already (so that one role
 * cannot refuse every other's registrations for the TTL of its entries:
 * review-refresh A), this database holds REFRESH_DB_SLOTS (so that one
 * database cannot refuse every other's), or every slot holds an entry
 * whose TTL has not ended (expired ones and those of dropped databases
 * are reclaimed).  Does not start the worker: a hit of the entry does
 * when it is due soon.
 */
static void
register_entry(const uint8 *hash, const char *query, const CallParams *params,
			   const CallOptions *opts, const uint8 *settings, uint64 queryid)
{
	StringInfoData b;
	RefreshSlot *s = NULL;
	TimestampTz now = GetCurrentTimestamp();
	bool ok;

	initStringInfo(&b);

	/*
	 * Not under a role the session did not take itself (a SECURITY DEFINER
	 * function, a restricted operation): the worker would replay the
	 * caller's settings (search_path) as that role, long after the caller
	 * may call the function.
	 */
	ok = !InLocalUserIdChange() && !InSecurityRestrictedOperation() &&
		build_payload(&b, query, params, opts);
	RefreshReclaimDropped();
	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	/* first the entries expired (of a dropped database, say) */
	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshSlot *t = &refresh_shared->slots[i];

		if (t->used && !t->busy && t->expires_at <= now)
			free_slot(t);
	}
	ok = ok && find_slot(hash) == NULL && role_slots() < REFRESH_ROLE_SLOTS &&
		database_slots() < REFRESH_DB_SLOTS;
	for (int i = 0; ok && i < REFRESH_SLOTS && s == NULL; i++)
		if (!refresh_shared->slots[i].used)
			s = &refresh_shared->slots[i];
	if (s != NULL)
	{
		s->used = true;
		s->busy = false;
		s->dboid = MyDatabaseId;
		memcpy(s->hash, hash, CE_HASH_LEN);
		memcpy(s->settings, settings, CE_HASH_LEN);
		s->roleid = GetUserId();
		s->sessionid = GetSessionUserId();
		s->queryid = queryid;
		s->ttl_ms = opts->ttl_ms;
		s->expires_at = TimestampTzPlusMilliseconds(now, opts->ttl_ms);
		pg_atomic_write_u32(&s->hits, 0);
		s->len = b.len;
		memcpy(s->payload, b.data, b.len);
		pg_atomic_fetch_add_u32(&refresh_shared->nused, 1);
	}
	LWLockRelease(refresh_shared->lock);
	pfree(b.data);
	RefreshCount(s != NULL ? RC_REGISTERED : RC_REFUSED);
}

/*
 * From the end of every call (pipeline.c's finish_call): a hit counts
 * for its registered entry, and starts this database's worker when none
 * runs, the entry is due soon and the cap allows (RefreshMayStart); a
 * stored result renews its registered entry's expiry and starts its hit
 * count again (it is as fresh as a new entry), or registers it when this
 * session asks for refresh-ahead.
 */
void
RefreshNoteCall(const uint8 *hash, const char *query, const CallParams *params,
				const CallOptions *opts, const uint8 *settings, uint64 queryid,
				bool hit, bool stored)
{
	static bool said_not_preloaded = false;
	RefreshSlot *s;
	bool start;
	TimestampTz now;

	if (stored)
	{
		memcpy(last_stored, hash, CE_HASH_LEN);
		last_stored_valid = true;
	}
	if (refresh_shared == NULL && stored && cache_ext_refresh_ahead &&
		!said_not_preloaded)
	{
		/* once per session: the setting would otherwise do nothing unseen */
		said_not_preloaded = true;
		ereport(NOTICE,
				(errmsg("cache_ext.refresh_ahead has no effect: cache_ext is not in shared_preload_libraries"),
				 errdetail("Refresh-ahead needs the background worker and the registry in shared memory."),
				 errhint("Add cache_ext to shared_preload_libraries.")));
	}
	if (refresh_shared == NULL || (!hit && !stored) ||
		(pg_atomic_read_u32(&refresh_shared->nused) == 0 &&
		 !(stored && cache_ext_refresh_ahead)))
		return;
	now = GetCurrentTimestamp();
	LWLockAcquire(refresh_shared->lock, hit ? LW_SHARED : LW_EXCLUSIVE);
	s = find_slot(hash);
	if (s != NULL && hit)
		pg_atomic_fetch_add_u32(&s->hits, 1);
	else if (s != NULL)
	{
		s->expires_at = TimestampTzPlusMilliseconds(now, opts->ttl_ms);
		s->ttl_ms = opts->ttl_ms;
		pg_atomic_write_u32(&s->hits, 0);
	}
	/* (tested under the shared lock, so that hits at the cap stay cheap) */
	start = s != NULL && hit && RefreshDueSoon(s, now) &&
		RefreshMayStart(MyDatabaseId, now);
	LWLockRelease(refresh_shared->lock);
	if (start)
		RefreshStartWorker(MyDatabaseId);
	if (s == NULL && stored && cache_ext_refresh_ahead && !RecoveryInProgress())
		register_entry(hash, query, params, opts, settings, queryid);
}

PG_FUNCTION_INFO_V1(cache_refresh_stats);

/*
 * cache_refresh_stats(): the registry's size, its counters, the database
 * served when only one has registered entries or a worker (NULL when
 * none or several: cache_refresh_workers() lists them), and the pid of
 * this database's worker (NULL when none runs for it); all NULL when not
 * preloaded.
 */
Datum
cache_refresh_stats(PG_FUNCTION_ARGS)
{
	TupleDesc desc;
	Datum values[RC_NCOUNTERS + 3];
	bool nulls[RC_NCOUNTERS + 3] = {0};
	int pid = 0;
	Oid dboid = InvalidOid;
	Oid dbs[REFRESH_SLOTS * 2];
	int ndbs;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (refresh_shared == NULL)
	{
		for (int i = 0; i < RC_NCOUNTERS + 3; i++)
			nulls[i] = true;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
	}
	LWLockAcquire(refresh_shared->lock, LW_SHARED);
	ndbs = RefreshDatabases(dbs);
	if (RefreshWorkerOf(MyDatabaseId) != NULL)
		pid = RefreshWorkerOf(MyDatabaseId)->pid;
	LWLockRelease(refresh_shared->lock);
	if (ndbs == 1)
		dboid = dbs[0];
	values[0] = Int32GetDatum((int32) pg_atomic_read_u32(&refresh_shared->nused));
	for (int i = 0; i < RC_NCOUNTERS; i++)
		values[1 + i] = Int64GetDatum((int64) pg_atomic_read_u64(&refresh_shared->counters[i]));
	values[RC_NCOUNTERS + 1] = ObjectIdGetDatum(dboid);
	nulls[RC_NCOUNTERS + 1] = !OidIsValid(dboid);
	values[RC_NCOUNTERS + 2] = Int32GetDatum(pid);
	nulls[RC_NCOUNTERS + 2] = pid == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
