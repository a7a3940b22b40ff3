/*-------------------------------------------------------------------------
 *
 * refresh_sched.c
 *	  Refresh-ahead's workers, one per database: which database gets a
 *	  worker, when, and for how long.  A hit of a registered entry due
 *	  soon starts its database's worker (refresh.c); at most
 *	  cache_ext.refresh_max_workers (and half of max_worker_processes) run at
 *	  once.  A database whose entries wait for a worker while that cap is
 *	  reached is handed one by a worker that goes idle or whose turn
 *	  (REFRESH_TURN_MS) is over; the waiting is not a queue: it is read
 *	  from the registry (hot slots due soon of a database with no worker),
 *	  so it costs nothing and entries not reached in time expire.  Also
 *	  cache_refresh_workers().
 *
 * Shared state: refresh_shared->workers[], written only under
 * refresh_shared->lock held exclusively (refresh.h).  No backend-local
 * state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "refresh.h"

/*
 * The cap in effect: the setting, but never above half of
 * max_worker_processes (at least 1), so that refresh-ahead leaves the
 * other half to parallel query, logical replication and other extensions
 * whatever it is set to (review-refreshdb F).
 */
static int
max_workers(void)
{
	return Min(cache_ext_refresh_max_workers, Max(max_worker_processes / 2, 1));
}

/*
 * Whether the entry was started long enough ago without running that its
 * start failed (the postmaster could not fork it: not retried by it).
 */
static bool
start_failed(RefreshWorker *w, TimestampTz now)
{
	return w->registered && w->pid == 0 &&
		TimestampDifferenceExceeds(w->started_at, now, REFRESH_START_MS);
}

/* The worker entry of dboid, or NULL; the lock is held. */
RefreshWorker *
RefreshWorkerOf(Oid dboid)
{
	for (int i = 0; i < REFRESH_SLOTS; i++)
		if (refresh_shared->workers[i].dboid == dboid && OidIsValid(dboid))
			return &refresh_shared->workers[i];
	return NULL;
}

/* Workers starting or running (not counting failed starts); lock held. */
static int
nregistered(TimestampTz now)
{
	int n = 0;

	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshWorker *w = &refresh_shared->workers[i];

		if (w->registered && !start_failed(w, now))
			n++;
	}
	return n;
}

/* An entry another database may take, or NULL; the lock is held. */
static RefreshWorker *
free_entry(TimestampTz now)
{
	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshWorker *w = &refresh_shared->workers[i];

		if (!OidIsValid(w->dboid) || start_failed(w, now) ||
			(!w->registered && w->pid == 0 && w->held_until <= now &&
			 TimestampDifferenceExceeds(w->started_at, now, REFRESH_RETRY_MS)))
			return w;
	}
	return NULL;
}

/*
 * Whether dboid needs a worker started and may have one, cap aside: none
 * is starting or running for it, its last worker's budget nap is over
 * (a worker that handed its place over, or exited, during it), and its
 * last start was at least REFRESH_RETRY_MS ago (a failing start is not
 * retried at every hit).  The lock is held, shared or exclusive.
 */
static bool
startable(Oid dboid, TimestampTz now)
{
	RefreshWorker *w = RefreshWorkerOf(dboid);

	if (w == NULL)
		return true;
	if ((w->registered && !start_failed(w, now)) || w->held_until > now)
		return false;
	return TimestampDifferenceExceeds(w->started_at, now, REFRESH_RETRY_MS);
}

/*
 * Whether a worker for dboid would be started now: startable, under the
 * cap, and an entry for it.  The lock is held, shared or exclusive (a
 * hit's test before it takes the lock exclusively).
 */
bool
RefreshMayStart(Oid dboid, TimestampTz now)
{
	return startable(dboid, now) && nregistered(now) < max_workers() &&
		(RefreshWorkerOf(dboid) != NULL || free_entry(now) != NULL);
}

/*
 * Take the entry for a start of dboid's worker, or NULL when it may not
 * start now (RefreshMayStart); the lock is held exclusively.
 */
static RefreshWorker *
claim_start(Oid dboid, TimestampTz now)
{
	RefreshWorker *w;

	if (!RefreshMayStart(dboid, now))
		return NULL;
	w = RefreshWorkerOf(dboid);
	if (w == NULL)
		w = free_entry(now);
	w->dboid = dboid;
	w->registered = true;
	w->pid = 0;
	w->started_at = now;
	w->held_until = 0;
	return w;
}

/*
 * Ask the postmaster for the worker of the entry claim_start took (the
 * lock is not held).  It is not restarted by the postmaster: it exits
 * when idle, when it hands its place over, or on SIGTERM.  When there is
 * no worker slot, the entry is released; the next hit or hand-over after
 * REFRESH_RETRY_MS tries again.
 */
static void
launch(RefreshWorker *w, Oid dboid)
{
	BackgroundWorker bw;

	memset(&bw, 0, sizeof(bw));
	bw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bw.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(bw.bgw_library_name, "cache_ext", BGW_MAXLEN);
	strlcpy(bw.bgw_function_name, "RefreshWorkerMain", BGW_MAXLEN);
	strlcpy(bw.bgw_name, "cache_ext refresh", BGW_MAXLEN);
	strlcpy(bw.bgw_type, "cache_ext refresh", BGW_MAXLEN);
	bw.bgw_main_arg = ObjectIdGetDatum(dboid);
	if (!RegisterDynamicBackgroundWorker(&bw, NULL))
	{
		LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
		if (w->dboid == dboid && w->registered && w->pid == 0)
			w->registered = false;
		LWLockRelease(refresh_shared->lock);
	}
}

/*
 * Start the worker of dboid unless one runs or starts, it was started
 * less than REFRESH_RETRY_MS ago, or the cap is reached (then a worker
 * that goes idle or ends its turn hands its place to the database that
 * waits).  The lock is not held.
 */
void
RefreshStartWorker(Oid dboid)
{
	RefreshWorker *w;

	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	w = claim_start(dboid, GetCurrentTimestamp());
	LWLockRelease(refresh_shared->lock);
	if (w != NULL)
		launch(w, dboid);
}

/*
 * The worker, at its start: true when it is the one started for dboid
 * (it records its pid); false for a second one, or one whose start was
 * given up: it exits.  The lock is not held.
 */
bool
RefreshClaimWorker(Oid dboid)
{
	RefreshWorker *w;
	bool ok;

	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	w = RefreshWorkerOf(dboid);
	ok = w != NULL && w->registered && w->pid == 0;
	if (ok)
		w->pid = MyProcPid;
	LWLockRelease(refresh_shared->lock);
	return ok;
}

/*
 * This worker of dboid no longer runs; the lock is held exclusively.
 * Once it had connected, its entry is free (the next start is not
 * delayed: REFRESH_RETRY_MS is only for starts that fail), or, until
 * held_until (the end of its budget nap), kept to delay the next
 * start of dboid's worker to then (review-refreshdb E); else it keeps
 * the time of its start, and the database's slots are dropped: it was
 * dropped or does not allow connections (ALTER DATABASE ...
 * ALLOW_CONNECTIONS false, which its owner may do), and its hot slots
 * would otherwise have a worker started and failing every
 * REFRESH_RETRY_MS, taking other databases' turns, until they expire
 * (review-refreshdb D).  The slots it was refreshing are no longer busy.
 */
static void
release_own(Oid dboid, bool connected, TimestampTz held_until)
{
	RefreshWorker *w = RefreshWorkerOf(dboid);

	if (w == NULL || w->pid != MyProcPid)
		return;
	w->pid = 0;
	w->registered = false;
	if (connected)
	{
		w->started_at = 0;
		w->held_until = held_until;
		if (held_until <= GetCurrentTimestamp())
			w->dboid = InvalidOid;
	}
	else
		RefreshFreeDatabase(dboid);
	for (int i = 0; i < REFRESH_SLOTS; i++)
		if (refresh_shared->slots[i].dboid == dboid)
			refresh_shared->slots[i].busy = false;
}

/* on_shmem_exit of the worker (the lock is not held): release_own. */
void
RefreshReleaseWorker(Oid dboid, bool connected)
{
	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	release_own(dboid, connected, 0);
	LWLockRelease(refresh_shared->lock);
}

/*
 * The database other than exclude that waits for a worker: one with a
 * hot slot due soon and no worker starting or running (nor a start that
 * failed less than REFRESH_RETRY_MS ago), the one whose such entry ends
 * first; InvalidOid when none.  The lock is held.
 */
static Oid
pick_waiting(Oid exclude, TimestampTz now)
{
	Oid best = InvalidOid;
	TimestampTz best_end = 0;

	for (int i = 0; i < REFRESH_SLOTS; i++)
	{
		RefreshSlot *s = &refresh_shared->slots[i];

		if (!s->used || s->dboid == exclude || !RefreshDueSoon(s, now) ||
			(OidIsValid(best) && s->expires_at >= best_end) ||
			!startable(s->dboid, now))
			continue;
		best = s->dboid;
		best_end = s->expires_at;
	}
	return best;
}

/* Whether a slot of dboid is hot and due soon; the lock is held. */
static bool
due_soon_in(Oid dboid, TimestampTz now)
{
	for (int i = 0; i < REFRESH_SLOTS; i++)
		if (refresh_shared->slots[i].dboid == dboid &&
			RefreshDueSoon(&refresh_shared->slots[i], now))
			return true;
	return false;
}

/*
 * The worker of this database, after each pass (the lock is not held;
 * since: when it started; held_until: when its budget nap ends, or 0).
 * When another database waits for a worker: under the cap, its worker
 * is started; at the cap, this worker hands its
 * place over when nothing of its own database is due soon or its turn
 * (REFRESH_TURN_MS since it started) is over, so that databases take
 * turns.  With leaving (idle), it hands its place over to a database
 * that waits, if any.  Returns true when this worker must exit now (it
 * no longer holds its place).
 */
bool
RefreshSchedule(TimestampTz since, TimestampTz held_until, bool leaving)
{
	TimestampTz now = GetCurrentTimestamp();
	RefreshWorker *w = NULL;
	Oid next;

	LWLockAcquire(refresh_shared->lock, LW_EXCLUSIVE);
	next = pick_waiting(MyDatabaseId, now);
	if (!leaving)
	{
		bool stay = !OidIsValid(next);

		if (!stay && nregistered(now) < max_workers())
		{
			w = claim_start(next, now);
			stay = true;
		}
		else if (!stay)
			stay = due_soon_in(MyDatabaseId, now) &&
				!TimestampDifferenceExceeds(since, now, REFRESH_TURN_MS);
		if (stay)
		{
			LWLockRelease(refresh_shared->lock);
			if (w != NULL)
				launch(w, next);
			return false;
		}
	}
	release_own(MyDatabaseId, true, held_until);
	if (OidIsValid(next))
		w = claim_start(next, now);
	LWLockRelease(refresh_shared->lock);
	if (w != NULL)
		launch(w, next);
	return true;
}

/*
 * The databases that have registered entries or a worker starting or
 * running, into dbs (room for 2 * REFRESH_SLOTS); returns their number.
 * The lock is held.
 */
int
RefreshDatabases(Oid *dbs)
{
	int n = 0;

	for (int i = 0; i < REFRESH_SLOTS * 2; i++)
	{
		RefreshSlot *s = i < REFRESH_SLOTS ? &refresh_shared->slots[i] : NULL;
		RefreshWorker *w = s ? NULL : &refresh_shared->workers[i - REFRESH_SLOTS];
		Oid db = s ? (s->used ? s->dboid : InvalidOid) :
					 (w->registered ? w->dboid : InvalidOid);
		int j = 0;

		while (j < n && dbs[j] != db)
			j++;
		if (OidIsValid(db) && j == n)
			dbs[n++] = db;
	}
	return n;
}

PG_FUNCTION_INFO_V1(cache_refresh_workers);

/*
 * cache_refresh_workers(): one row per database that has registered
 * entries or a worker: its oid, its entries, those hit and due soon, its
 * worker's pid (NULL when none runs), and whether it waits for one (hot
 * entries due soon, no worker starting or running: the cap is reached, or
 * a start failed and is retried).  No rows when not preloaded.
 */
Datum
cache_refresh_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid dbs[REFRESH_SLOTS * 2];
	int nslots[REFRESH_SLOTS * 2] = {0};
	int nsoon[REFRESH_SLOTS * 2] = {0};
	int pids[REFRESH_SLOTS * 2] = {0};
	bool waiting[REFRESH_SLOTS * 2] = {0};
	int n;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	if (refresh_shared == NULL)
		PG_RETURN_VOID();

	LWLockAcquire(refresh_shared->lock, LW_SHARED);
	n = RefreshDatabases(dbs);
	for (int j = 0; j < n; j++)
	{
		RefreshWorker *w = RefreshWorkerOf(dbs[j]);

		pids[j] = w ? w->pid : 0;
		waiting[j] = due_soon_in(dbs[j], now) && startable(dbs[j], now);
		for (int i = 0; i < REFRESH_SLOTS; i++)
		{
			RefreshSlot *s = &refresh_shared->slots[i];

			if (s->used && s->dboid == dbs[j])
			{
				nslots[j]++;
				nsoon[j] += RefreshDueSoon(s, now) ? 1 : 0;
			}
		}
	}
	LWLockRelease(refresh_shared->lock);

	for (int j = 0; j < n; j++)
	{
		Datum values[5];
		bool nulls[5] = {0};

		values[0] = ObjectIdGetDatum(dbs[j]);
		values[1] = Int32GetDatum(nslots[j]);
		values[2] = Int32GetDatum(nsoon[j]);
		values[3] = Int32GetDatum(pids[j]);
		nulls[3] = pids[j] == 0;
		values[4] = BoolGetDatum(waiting[j]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
