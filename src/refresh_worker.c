/*-------------------------------------------------------------------------
 *
 * refresh_worker.c
 *	  Refresh-ahead's background worker ("cache_ext refresh", one per
 *	  database with hot entries, connected to it; refresh_sched.c says
 *	  which run): every pass it picks the hottest registered entries of
 *	  its database (hits times mean miss cost) whose TTL ends within the
 *	  lead, and makes each call again through the normal pipeline,
 *	  forcing a recompute and store though the entry is still there,
 *	  under the recorded role, settings and parameters.
 *
 * A refresh is a cached_query call made by the same code as any other:
 * the same analysis, privilege checks, bypass rules and key, under the
 * role that made the call (SECURITY_LOCAL_USERID_CHANGE and
 * SECURITY_RESTRICTED_OPERATION: the query cannot SET ROLE out of it).
 * It stores nothing a normal call would not; its MISS reads the
 * generations before its snapshot as every miss does, so an entry
 * invalidated meanwhile is stored with the new data or not at all.
 *
 * Shared state is refresh.c's (refresh.h).  Backend-local: whether the
 * next call is forced (refresh_forced), set and cleared around one call;
 * in the worker, whether it connected (worker_connected).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "cache_ext.h"
#include "call.h"
#include "outcome.h"
#include "refresh.h"

/*
 * The longest one refresh may run (review-refresh C), then it is dropped:
 * ten times the query's mean miss time, between these bounds.
 */
#define REFRESH_JOB_MAX_MS 30000
#define REFRESH_JOB_MIN_MS 5000

static bool refresh_forced = false;
static bool worker_connected = false; /* the worker connected to its database */

/*
 * Whether the next call is a forced refresh, once: the call takes it when
 * it starts (so that the calls its query makes are normal); it then skips
 * the local tier, runs its query only to store it, and recomputes a hit.
 */
bool
RefreshTakeForced(void)
{
	bool f = refresh_forced;

	refresh_forced = false;
	return f;
}

/* What became of one job. */
typedef enum JobResult
{
	JOB_REFRESHED,
	JOB_DROPPED,
	JOB_FAILED
} JobResult;

/* One candidate of a pass. */
typedef struct Candidate
{
	int slot;
	uint8 hash[CE_HASH_LEN]; /* its entry key, when it was found due */
	double score;
} Candidate;

static char *
get_string(StringInfo b)
{
	int len = pq_getmsgint(b, 4);

	if (len < 0 || len > b->len - b->cursor)
		elog(ERROR, "refresh job payload is malformed");
	return pnstrdup(pq_getmsgbytes(b, len), len);
}

/*
 * Apply the recorded settings for this transaction (GUC_ACTION_LOCAL:
 * undone at its end), under the call's role and with the rights of who
 * set each (a placeholder a user set must not become a superuser's
 * value), and say whether the settings digest is the call's.
 */
static bool
apply_settings(StringInfo b, const uint8 *digest)
{
	int n = pq_getmsgint(b, 4);
	uint8 now[CE_HASH_LEN];

	for (int i = 0; i < n; i++)
	{
		char *name = get_string(b);
		char *value = get_string(b);
		GucContext context = pq_getmsgbyte(b) ? PGC_SUSET : PGC_USERSET;

		(void) set_config_option(name, value, context, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, ERROR, false);
	}
	settings_key(now);
	return memcmp(now, digest, CE_HASH_LEN) == 0;
}

/* The parameters (binary, received under the call's role) and options. */
static void
read_call(StringInfo b, CallParams *p, CallOptions *o)
{
	p->n = pq_getmsgint(b, 4);
	if (p->n < 0 || p->n > FUNC_MAX_ARGS)
		elog(ERROR, "refresh job payload is malformed");
	p->types = palloc0(sizeof(Oid) * Max(p->n, 1));
	p->values = palloc0(sizeof(Datum) * Max(p->n, 1));
	p->nulls = palloc0(sizeof(bool) * Max(p->n, 1));
	for (int i = 0; i < p->n; i++)
	{
		Oid recv;
		Oid ioparam;
		StringInfoData v;
		int len;

		p->types[i] = pq_getmsgint(b, 4);
		p->nulls[i] = pq_getmsgbyte(b) != 0;
		if (p->nulls[i])
			continue;
		len = pq_getmsgint(b, 4);
		if (len < 0 || len > b->len - b->cursor)
			elog(ERROR, "refresh job payload is malformed");
		initStringInfo(&v);
		appendBinaryStringInfo(&v, pq_getmsgbytes(b, len), len);
		getTypeBinaryInputInfo(p->types[i], &recv, &ioparam);
		p->values[i] = OidReceiveFunctionCall(recv, &v, ioparam, -1);
	}
	memset(o, 0, sizeof(*o));
	o->ttl_ms = pq_getmsgint64(b);
	o->namespace = get_string(b);
	o->ntags = pq_getmsgint(b, 4);
	if (o->ntags < 0 || o->ntags > 1024)
		elog(ERROR, "refresh job payload is malformed");
	o->tags = palloc0(sizeof(char *) * Max(o->ntags, 1));
	for (int i = 0; i < o->ntags; i++)
		o->tags[i] = get_string(b);
}

/*
 * Make the job's call again, in the current transaction: its settings
 * (dropped when the digest differs), its role (dropped when it is gone or
 * its session user can no longer take it), then a forced cached_query
 * call.  Refreshed only when it stored an entry under the job's key.
 * Errors propagate (the caller counts them).
 */
static JobResult
refresh_job(RefreshSlot *job)
{
	StringInfoData b;
	char *query;
	CallParams params;
	CallOptions opts;
	Oid save_uid;
	int save_sec;
	Tuplestorestate *ts;
	const CallOutcome *o;
	uint8 stored[CE_HASH_LEN];
	bool same;
	double cost_ms;
	int limit_ms;

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(job->roleid)))
		return JOB_DROPPED;

	/*
	 * A role the session took with SET ROLE: only while its session user
	 * could still take it (is_member_of_role is SET ROLE's own test; a
	 * superuser may take any).  Otherwise the worker would go on acting as
	 * that role, with the session's search_path, for a session user that
	 * lost it (TAP 316).
	 */
	if (!is_member_of_role(job->sessionid, job->roleid))
	{
		elog(LOG, "cache_ext refresh: dropped a job whose session user can no longer take its role");
		return JOB_DROPPED;
	}
	b.data = job->payload;
	b.len = job->len;
	b.maxlen = job->len;
	b.cursor = 0;
	query = get_string(&b);
	/* (an error below is rolled back with the user id: AbortTransaction) */
	GetUserIdAndSecContext(&save_uid, &save_sec);
	SetUserIdAndSecContext(job->roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	if (!apply_settings(&b, job->settings))
	{
		SetUserIdAndSecContext(save_uid, save_sec);
		elog(LOG, "cache_ext refresh: dropped a job whose settings do not give the same key here");
		return JOB_DROPPED;
	}
	read_call(&b, &params, &opts);
	/* each job is bounded, whatever the call's own statement_timeout */
	if (!QueryStatsMeanMissMs(job->queryid, &cost_ms) || cost_ms <= 0)
		cost_ms = REFRESH_JOB_MAX_MS;
	limit_ms = (int) Min(Max(10.0 * cost_ms, REFRESH_JOB_MIN_MS), REFRESH_JOB_MAX_MS);
	enable_timeout_after(STATEMENT_TIMEOUT,
						 StatementTimeout > 0 ? Min(StatementTimeout, limit_ms) : limit_ms);
	PushActiveSnapshot(GetTransactionSnapshot());
	ts = tuplestore_begin_heap(false, false, work_mem);
	(void) RefreshLastStored(stored);
	refresh_forced = true;
	(void) cached_query_common(cstring_to_text(query), &params, &opts, NULL, ts);
	refresh_forced = false;
	tuplestore_end(ts);
	PopActiveSnapshot();
	disable_timeout(STATEMENT_TIMEOUT, false);
	SetUserIdAndSecContext(save_uid, save_sec);

	o = OutcomeLast();
	same = RefreshLastStored(stored) && memcmp(stored, job->hash, CE_HASH_LEN) == 0;
	if (o != NULL && o->status == CALL_MISS && o->not_stored == NULL && same)
		return JOB_REFRESHED;
	if (o != NULL && o->status == CALL_MISS && o->not_stored == NULL)
		elog(LOG, "cache_ext refresh: dropped a job whose call stored another key");
	else if (o != NULL)
		elog(LOG, "cache_ext refresh: dropped a job whose call did not store: %s",
			 OutcomeRender(o));
	return JOB_DROPPED;
}

/*
 * Run one job in its own transaction; an error is logged, rolled back and
 * counted (a cancel by statement_timeout too); SIGTERM is FATAL and ends
 * the worker here.  A job that did not refresh is dropped from the
 * registry.
 */
static void
run_job(RefreshSlot *job)
{
	MemoryContext cxt = CurrentMemoryContext;
	JobResult r;

	StartTransactionCommand();
	PG_TRY();
	{
		r = refresh_job(job);
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt); /* (commit leaves TopMemoryContext) */
	}
	PG_CATCH();
	{
		ErrorData *e;

		refresh_forced = false;
		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		disable_all_timeouts(false);
		QueryCancelPending = false;
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		ereport(LOG,
				(errmsg("cache_ext refresh: dropped a job whose call failed: %s", e->message)));
		FreeErrorData(e);
		r = JOB_FAILED;
	}
	PG_END_TRY();
	RefreshCount(r == JOB_REFRESHED	  ? RC_REFRESHED :
					 r == JOB_DROPPED ? RC_DROPPED :
										RC_FAILED);
	if (r != JOB_REFRESHED)
		RefreshFree(job->hash);
	else
	{
		/* the pipeline renewed its expiry; it is no longer being run */
		LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < REFRESH_SLOTS; i++)
			if (refresh_shared->slots[i].used &&
				refresh_shared->slots[i].dboid == MyDatabaseId &&
				memcmp(refresh_shared->slots[i].hash, job->hash, CE_HASH_LEN) == 0)
				refresh_shared->slots[i].busy = false;
		LWLockRelease(refresh_shared->lock);
	}
}

static int
candidate_cmp(const void *a, const void *b)
{
	double x = ((const Candidate *) a)->score;
	double y = ((const Candidate *) b)->score;

	return x > y ? -1 : x < y ? 1 :
								0;
}

/*
 * The lead: how long before its end an entry is refreshed, a tenth of its
 * TTL but at least REFRESH_MIN_LEAD_MS, and never more than half of it.
 */
static int64
lead_ms(int64 ttl_ms)
{
	return Min(Max(ttl_ms / 10, REFRESH_MIN_LEAD_MS), ttl_ms / 2);
}

/*
 * Whether the slot (read under the lock) is hot and due within
 * REFRESH_IDLE_EXIT_MS: the worker stays for it, and a hit starts the
 * worker for it.  An entry not hit since it was stored needs no worker,
 * so that the worker does not hold its database for the TTL of entries
 * nobody reads (review-refresh A).
 */
bool
RefreshDueSoon(RefreshSlot *s, TimestampTz now)
{
	return s->used && pg_atomic_read_u32(&s->hits) > 0 &&
		now >= s->expires_at - (lead_ms(s->ttl_ms) + REFRESH_IDLE_EXIT_MS) * 1000;
}

/*
 * Find the jobs of this database due (hit since stored, TTL ending within
 * the lead) and free the slots of entries whose TTL has ended (of every
 * database: an entry hit counts as expired whoever sees it); into c,
 * hottest first.  Returns their number; *soon says whether a job of this
 * database is due soon (one being run included).
 */
static int
due_jobs(Candidate *c, bool *soon)
{
	TimestampTz now = GetCurrentTimestamp();
	int n = 0;

	*soon = false;

	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshSlot *s = &refresh_shared->slots[i];
		uint32 hits = pg_atomic_read_u32(&s->hits);

		if (s->dboid == MyDatabaseId)
			*soon = *soon || RefreshDueSoon(s, now);
		if (!s->used || s->busy)
			continue;
		if (s->expires_at <= now)
		{
			if (hits > 0)
				RefreshCount(RC_EXPIRED);
			s->used = false;
			pg_atomic_fetch_sub_u32(&refresh_shared->nused, 1);
		}
		else if (hits > 0 && s->dboid == MyDatabaseId &&
				 now >= s->expires_at - lead_ms(s->ttl_ms) * 1000)
		{
			c[n].slot = i;
			memcpy(c[n].hash, s->hash, CE_HASH_LEN);
			c[n].score = hits;
			n++;
		}
	}
	LWLockRelease(refresh_shared->lock);
	for (int i = 0; i < n; i++)
	{
		double cost;

		if (!QueryStatsMeanMissMs(refresh_shared->slots[c[i].slot].queryid, &cost) ||
			cost <= 0)
			cost = 1.0;
		c[i].score *= cost;
	}
	qsort(c, n, sizeof(Candidate), candidate_cmp);
	return n;
}

/*
 * Free the slots of this database that no job is running (dropped):
 * with cache_ext.enabled off the worker would hold the database and a
 * worker slot doing nothing until they expired, up to a tenth of their
 * TTL (review-refreshdb C).  The lock is not held.
 */
static void
drop_own_jobs(void)
{
	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshSlot *s = &refresh_shared->slots[i];

		if (s->used && !s->busy && s->dboid == MyDatabaseId)
		{
			s->used = false;
			pg_atomic_fetch_sub_u32(&refresh_shared->nused, 1);
			RefreshCount(RC_DROPPED);
		}
	}
	LWLockRelease(refresh_shared->lock);
}

/*
 * One pass: refresh at most cache_ext.refresh_max_per_pass due entries,
 * hottest first; the others wait for the next pass or expire.  With run
 * false (cache_ext.enabled off, or the budget's nap), only free the slots
 * of expired entries.  Returns whether a job was due soon when it started.
 */
static bool
refresh_pass(bool run)
{
	Candidate c[REFRESH_SLOTS];
	bool soon;
	int n = due_jobs(c, &soon);
	RefreshSlot *job = palloc(sizeof(RefreshSlot));

	if (!run)
		n = 0;

	for (int i = 0; i < n && i < cache_ext_refresh_max_per_pass; i++)
	{
		RefreshSlot *s = &refresh_shared->slots[c[i].slot];
		bool ok;

		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);

		/*
		 * Still the entry found due: while the jobs before it ran, its slot
		 * may have expired and been taken by another database's
		 * registration, whose call must never run here, as this database's
		 * roles and catalog (review-refreshdb A).
		 */
		ok = s->used && !s->busy && s->dboid == MyDatabaseId &&
			memcmp(s->hash, c[i].hash, CE_HASH_LEN) == 0;
		if (ok)
		{
			s->busy = true;
			memcpy(job, s, offsetof(RefreshSlot, payload) + s->len);
		}
		LWLockRelease(refresh_shared->lock);
		if (ok)
			run_job(job);
	}
	pfree(job);
	return soon;
}

/* on_shmem_exit: this worker of database arg no longer runs. */
static void
release_worker(int code, Datum arg)
{
	RefreshReleaseWorker(DatumGetObjectId(arg), worker_connected);
}

PGDLLEXPORT void RefreshWorkerMain(Datum arg);

/*
 * The worker of database arg: one per database (a second one, or one
 * whose start was given up, exits at once), connected to it as the
 * bootstrap superuser; each job runs under its own role.  Sleeps so that
 * its passes take at most cache_ext.refresh_budget of wall time; does
 * nothing while the server is a standby.  Exits when no entry of its
 * database hit has been due soon (RefreshDueSoon) for
 * REFRESH_IDLE_EXIT_MS, after a pass with cache_ext.enabled off (its
 * database's jobs dropped, as set for it), or when it hands its place
 * to a database that waits (RefreshSchedule), or on SIGTERM (FATAL,
 * between two jobs or inside one, whose transaction is rolled back).
 */
void
RefreshWorkerMain(Datum arg)
{
	MemoryContext pass_cxt;
	TimestampTz idle_since = GetCurrentTimestamp();
	TimestampTz since;
	TimestampTz next_pass = 0; /* the budget: no pass runs jobs before it */
	TimestampTz held = 0;	   /* next_pass, when it is a nap of the budget */

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (!RefreshClaimWorker(DatumGetObjectId(arg)))
		proc_exit(0);
	on_shmem_exit(release_worker, arg);
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	worker_connected = true;
	since = GetCurrentTimestamp();
	pgstat_report_appname("cache_ext refresh");
	pass_cxt = AllocSetContextCreate(TopMemoryContext, "cache_ext refresh worker",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		TimestampTz start = GetCurrentTimestamp();
		bool run = start >= next_pass;
		long busy_ms;
		long nap_ms = REFRESH_NAP_MS;
		MemoryContext old;
		bool soon = false;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!RecoveryInProgress())
		{
			if (!cache_ext_enabled)
				drop_own_jobs();
			old = MemoryContextSwitchTo(pass_cxt);
			soon = refresh_pass(run && cache_ext_enabled);
			MemoryContextSwitchTo(old);
			MemoryContextReset(pass_cxt);
			/* (the catalog tells which databases were dropped) */
			StartTransactionCommand();
			RefreshReclaimDropped();
			CommitTransactionCommand();
			pgstat_report_stat(false);
		}

		if (run)
		{
			busy_ms = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
			/* busy / (busy + nap) <= budget */
			nap_ms = Max(nap_ms, (long) (busy_ms * (1.0 - cache_ext_refresh_budget) / cache_ext_refresh_budget));
			next_pass = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), nap_ms);
			held = nap_ms > REFRESH_NAP_MS ? next_pass : 0;
		}

		/*
		 * Nothing hot due soon: exit (0: not restarted), so as not to hold
		 * the database, and hand this place to a database that waits; a
		 * hit of an entry due soon starts a worker again.  Or hand it over
		 * now, when another database waits and it is its turn.
		 */
		if (soon)
			idle_since = start;
		else if (!cache_ext_enabled ||
				 TimestampDifferenceExceeds(idle_since, start, REFRESH_IDLE_EXIT_MS))
		{
			(void) RefreshSchedule(since, held, true);
			proc_exit(0);
		}
		if (RefreshSchedule(since, held, false))
			proc_exit(0);

		/*
		 * The budget's nap is taken REFRESH_NAP_MS at a time, each followed
		 * by a pass that runs nothing: so that the worker hands its place
		 * over, or exits when idle, during a nap of minutes after a slow
		 * pass, which held the turn of every database waiting at the cap
		 * and its own database (review-refreshdb E).
		 */
		nap_ms = Min(REFRESH_NAP_MS,
					 TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_pass));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
