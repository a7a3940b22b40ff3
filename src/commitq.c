/*-------------------------------------------------------------------------
 *
 * commitq.c
 *	  Commits that do not wait on the network: the commit queue, the
 *	  in-flight counters, and the LSN watermark for hot standbys
 *	  (docs/invalidation.md, "Commit: no round trip").
 *
 * A committing transaction's generation keys go into a bounded queue in
 * shared memory at the end of its commit; a background worker of its own
 * ("cache_ext commit queue") sends the queue, many commits in one MSET, and COMMIT returns without a
 * round trip.  Until Redis took a key, the counter at a hash of its name is
 * non-zero:
 *
 *	 - a reader on this server reads the counters of the generations it
 *	   will compare before it sends its lookup, and waits (bounded) while
 *	   one is non-zero: a commit whose COMMIT returned before the reader
 *	   started incremented them before returning, and they read zero again
 *	   only after Redis answered the MSET, so the lookup, sent later, reads
 *	   the bumped values.  A collision only makes a reader wait for a commit
 *	   it does not depend on.
 *	 - a hot standby cannot see these counters: with each MSET the worker
 *	   writes "<base>:wm", an LSN at or below which every commit's bumps are
 *	   in Redis, and a standby serves a hit only when that watermark, read
 *	   first in the lookup's round trip, is at or past its replay position
 *	   read before the lookup.  A commit counts from XACT_EVENT_PRE_COMMIT
 *	   (commit_lsn: the insert position then, a lower bound of its commit
 *	   record's) until its keys are queued or sent.
 *
 * After an MSET that carried keys the worker lets commits gather for
 * cache_ext.commit_queue_delay; meanwhile commits do not wake it, and a
 * reader that has to wait for a bump does (gathering, readers below).
 *
 * A full queue, a missing worker or no target falls back to the round trip
 * at commit (xactset.c), as before.  The queue dies with shared memory; a
 * crash already bumps the server generation at the next start, and a
 * shutdown that leaves keys queued is not trusted as clean
 * (CommitQueueEmpty, outbox_state.c).
 *
 * Shared state and its locks: CommitQueue below.  "lock" means
 * commitq->lock (its own tranche, "cache_ext commitq"), never held across
 * a round trip or anything that can fail; "atomic" means a pg_atomic read
 * and written without it.  Only the worker removes items (from the head);
 * backends append at the tail.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "pgstat.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "commitq.h"
#include "invalidate.h"
#include "outbox.h"
#include "outbox_internal.h"
#include "redis/redis.h"
#include "store/store.h"

#define CQ_COUNTERS 65536 /* in-flight counters, by a hash of the key */
#define CQ_CAPACITY 4096  /* keys queued at most */

typedef struct CqItem
{
	int target; /* the outbox target the key belongs to */
	bool done;	/* sent or in the outbox; its counter is down */
	char key[INVAL_KEY_LEN];
} CqItem;

typedef struct CommitQueue
{
	LWLock *lock;							/* constant */
	Latch *worker_latch;					/* the queue worker's latch, or NULL:
											 * read and written whole, as the
											 * outbox's worker_latch */
	ConditionVariable delivered;			/* broadcast after each delivery */
	int head;								/* lock: index of the oldest item */
	int count;								/* lock: items queued */
	int nslots;								/* constant: entries of commit_lsn */
	uint64 queued[OUTBOX_TARGETS];			/* lock: keys ever queued, per
											 * target */
	pg_atomic_uint64 sent[OUTBOX_TARGETS];	/* atomic (written by the worker
											 * alone): how many of them were
											 * sent or kept in the outbox */
	pg_atomic_uint64 worker_conn;			/* atomic (written by the worker
											 * alone): a hash of the connection
											 * settings it uses, 0 unknown */
	pg_atomic_uint32 gathering;				/* atomic (written by the worker
											 * alone): 1 while it lets commits
											 * gather (they do not wake it) */
	pg_atomic_uint32 readers;				/* atomic: readers waiting in
											 * CommitQueueWaitDelivered */
	pg_atomic_uint32 inflight[CQ_COUNTERS]; /* atomic */
	CqItem items[CQ_CAPACITY];				/* lock */

	/*
	 * atomic, per PGPROC: the insert position when its commit began to be
	 * in flight, or 0.  Written only by the process owning the PGPROC.
	 */
	pg_atomic_uint64 commit_lsn[FLEXIBLE_ARRAY_MEMBER];
} CommitQueue;

static CommitQueue *commitq = NULL;

bool cache_ext_async_commit = true;
int cache_ext_watermark_interval = 5; /* ms */
int cache_ext_commit_queue_delay = 1; /* ms */

/* the worker: the insert position of its last published watermark */
static XLogRecPtr last_published = InvalidXLogRecPtr;

static Size
commitq_size(void)
{
	return add_size(offsetof(CommitQueue, commit_lsn),
					mul_size(sizeof(pg_atomic_uint64),
							 PROC_SLOTS()));
}

void
CommitQueueShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(commitq_size()));
	RequestNamedLWLockTranche("cache_ext commitq", 1);
}

/* With AddinShmemInitLock held. */
void
CommitQueueShmemInit(void)
{
	bool found;

	commitq = ShmemInitStruct("cache_ext commit queue", commitq_size(), &found);
	if (found)
		return;
	memset(commitq, 0, commitq_size());
	commitq->lock = &(GetNamedLWLockTranche("cache_ext commitq"))->lock;
	ConditionVariableInit(&commitq->delivered);
	commitq->nslots = PROC_SLOTS();
	for (int i = 0; i < CQ_COUNTERS; i++)
		pg_atomic_init_u32(&commitq->inflight[i], 0);
	for (int i = 0; i < OUTBOX_TARGETS; i++)
		pg_atomic_init_u64(&commitq->sent[i], 0);
	pg_atomic_init_u64(&commitq->worker_conn, 0);
	pg_atomic_init_u32(&commitq->gathering, 0);
	pg_atomic_init_u32(&commitq->readers, 0);
	for (int i = 0; i < commitq->nslots; i++)
		pg_atomic_init_u64(&commitq->commit_lsn[i], 0);
}

static inline uint32
counter_of(const char *key)
{
	return hash_bytes((const unsigned char *) key, (int) strlen(key)) % CQ_COUNTERS;
}

/* ---- commits in flight, for the watermark ---- */

void
CommitQueueMarkBegin(void)
{
	XLogRecPtr lsn;

	if (commitq == NULL || MyProc == NULL || MyProc->pgprocno >= commitq->nslots ||
		RecoveryInProgress())
		return;
	lsn = GetXLogInsertRecPtr();
	pg_atomic_write_u64(&commitq->commit_lsn[MyProc->pgprocno], Max(lsn, 1));
}

void
CommitQueueMarkEnd(void)
{
	if (commitq == NULL || MyProc == NULL || MyProc->pgprocno >= commitq->nslots)
		return;
	if (pg_atomic_read_u64(&commitq->commit_lsn[MyProc->pgprocno]) != 0)
		pg_atomic_write_u64(&commitq->commit_lsn[MyProc->pgprocno], 0);
}

/*
 * The watermark that may be published once what is queued now is in
 * Redis: read the insert position first, then the commits in flight (a
 * commit that begins after the first read has its commit record after it;
 * one that ended before the scan queued its keys before the caller takes
 * the queue).
 */
static XLogRecPtr
watermark_now(void)
{
	XLogRecPtr w = GetXLogInsertRecPtr();

	pg_memory_barrier();
	for (int i = 0; i < commitq->nslots; i++)
	{
		uint64 b = pg_atomic_read_u64(&commitq->commit_lsn[i]);

		if (b != 0 && b - 1 < w)
			w = b - 1;
	}
	return w;
}

/* ---- the commit's side ---- */

/*
 * A hash of the settings this process connects to Redis with, beyond the
 * URL (a target is one URL and one key prefix): the worker sends a
 * backend's keys only if it would connect the same way (a password file or
 * TLS files set per database or role are not the worker's).
 */
static uint64
conn_settings_hash(void)
{
	static const char *const names[] = {
		"cache_ext.redis_password_file", "cache_ext.sentinel_password_file",
		"cache_ext.tls_ca_file",
		"cache_ext.tls_cert_file", "cache_ext.tls_key_file",
		"cache_ext.tls_verify"};
	uint64 h = 1;

	for (int i = 0; i < lengthof(names); i++)
	{
		const char *v = GetConfigOption(names[i], true, false);

		if (v != NULL)
			h = hash_bytes_extended((const unsigned char *) v, strlen(v), h);
		h = hash_combine64(h, (uint64) i);
	}
	return h == 0 ? 1 : h;
}

/*
 * conn_settings_hash() on the commit path: computed again only when one of
 * the settings it hashes has another value than at the last call (six
 * lookups by name per commit showed in the profile at 8 clients).
 */
static uint64
conn_settings_hash_cached(void)
{
	static char *seen[5];
	static bool seen_verify;
	static uint64 h = 0;
	const char *now[5] = {
		cache_ext_redis_password_file, cache_ext_sentinel_password_file,
		cache_ext_tls_ca_file, cache_ext_tls_cert_file, cache_ext_tls_key_file};
	bool same = h != 0 && seen_verify == cache_ext_tls_verify;

	for (int i = 0; same && i < lengthof(now); i++)
		same = (seen[i] == NULL) == (now[i] == NULL) &&
			(now[i] == NULL || strcmp(seen[i], now[i]) == 0);
	if (same)
		return h;
	h = 0; /* an error below leaves nothing to match */
	for (int i = 0; i < lengthof(now); i++)
	{
		if (seen[i] != NULL)
			pfree(seen[i]);
		seen[i] = NULL;
		seen[i] = now[i] ? MemoryContextStrdup(TopMemoryContext, now[i]) : NULL;
	}
	seen_verify = cache_ext_tls_verify;
	h = conn_settings_hash();
	return h;
}

/*
 * Queue a committed transaction's keys for the worker: true when queued
 * (the caller then returns without a round trip), false when the caller
 * must send them itself (no queue, no worker, no usable target, settings
 * the worker does not share, or full).  Shared memory, a lock and one
 * palloc; called inside the committing path's PG_TRY.
 */
bool
CommitQueuePush(char **keys, int n)
{
	int ti;
	uint32 *idx;
	bool ok;
	bool filling;
	Latch *l;

	if (n == 0)
		return true;
	if (commitq == NULL || !InvalShmemReady() || n > CQ_CAPACITY / 4 ||
		commitq->worker_latch == NULL || !cache_ext_async_commit ||
		pg_atomic_read_u64(&commitq->worker_conn) != conn_settings_hash_cached())
		return false;
	/*
	 * A blocked target is fine: its hits wait anyway, and the worker puts
	 * what Redis does not take in its outbox (at once while its circuit
	 * breaker is open), so a commit never waits for a Redis that is down.
	 */
	ti = OutboxCurrentTarget();
	if (ti < 0)
		return false;
	idx = palloc(sizeof(uint32) * n);
	for (int i = 0; i < n; i++)
	{
		if (strlen(keys[i]) >= INVAL_KEY_LEN)
		{
			pfree(idx);
			return false;
		}
		idx[i] = counter_of(keys[i]);
	}
	/* counters first: the worker decrements only what it took */
	for (int i = 0; i < n; i++)
		pg_atomic_fetch_add_u32(&commitq->inflight[idx[i]], 1);

	LWLockAcquire(commitq->lock, LW_EXCLUSIVE);
	ok = commitq->count + n <= CQ_CAPACITY;
	if (ok)
	{
		for (int i = 0; i < n; i++)
		{
			CqItem *it = &commitq->items[(commitq->head + commitq->count + i) % CQ_CAPACITY];

			it->target = ti;
			it->done = false;
			strlcpy(it->key, keys[i], INVAL_KEY_LEN);
		}
		commitq->count += n;
		commitq->queued[ti] += n;
	}
	/* a queue a quarter full (or full) is sent now, gathering or not */
	filling = !ok || commitq->count > CQ_CAPACITY / 4;
	LWLockRelease(commitq->lock);

	if (!ok)
		for (int i = 0; i < n; i++)
			pg_atomic_fetch_sub_u32(&commitq->inflight[idx[i]], 1);
	pfree(idx);
	/*
	 * No wake-up while the worker gathers: it sends the queue when that
	 * ends (it cleared the flag before it reads the queue, we read the
	 * flag after our keys are in it), unless the queue is filling.  Read
	 * the latch once: a worker exiting meanwhile leaves a stale but valid
	 * latch.
	 */
	pg_memory_barrier();
	l = commitq->worker_latch;
	if (l != NULL && (filling || pg_atomic_read_u32(&commitq->gathering) == 0))
		SetLatch(l);
	return ok;
}

/* Whether the queue is more than a quarter full: the worker then sends at once. */
static bool
queue_filling(void)
{
	bool filling;

	LWLockAcquire(commitq->lock, LW_SHARED);
	filling = commitq->count > CQ_CAPACITY / 4;
	LWLockRelease(commitq->lock);
	return filling;
}

/* Keys queued for target ti (cache_stats, cache_health: not the hit path). */
int
CommitQueueCountFor(int ti)
{
	int n = 0;

	if (commitq == NULL)
		return 0;
	LWLockAcquire(commitq->lock, LW_SHARED);
	for (int i = 0; i < commitq->count; i++)
		if (commitq->items[(commitq->head + i) % CQ_CAPACITY].target == ti)
			n++;
	LWLockRelease(commitq->lock);
	return n;
}

/* Whether nothing is queued (outbox_state.c: a clean shutdown). */
bool
CommitQueueEmpty(void)
{
	return commitq == NULL || commitq->count == 0;
}

/* ---- the reader's side ---- */

/*
 * How long a reader waits for bumps on their way: as long as the worker
 * may wait for Redis to take them, and one command more (after that they
 * are in Redis or in the outbox, which blocks hits).
 */
int
CommitQueueWaitBudget(void)
{
	return cache_ext_invalidation_timeout + cache_ext_command_timeout;
}

static bool
any_in_flight(char *const *keys, int n)
{
	for (int i = 0; i < n; i++)
		if (pg_atomic_read_u32(&commitq->inflight[counter_of(keys[i])]) != 0)
			return true;
	return false;
}

/* this backend counts in commitq->readers; the exit callback is set */
static bool reader_counted = false;
static bool reader_exit_set = false;

/* Leave commitq->readers: after the wait, on an error, or at exit (FATAL). */
static void
reader_uncount(int code, Datum arg)
{
	if (reader_counted)
		pg_atomic_fetch_sub_u32(&commitq->readers, 1);
	reader_counted = false;
}

/*
 * Before a lookup is sent: wait until no commit's bumps of these
 * generation keys are on their way to Redis, at most timeout_ms
 * (interruptible).  True when none is; false when the wait ran out (the
 * caller serves no hit).  Without a queue (a standby, not preloaded) there
 * is nothing to wait for.
 */
bool
CommitQueueWaitDelivered(char *const *keys, int n, int timeout_ms)
{
	TimestampTz deadline;
	int ti;
	uint64 upto;
	volatile bool clear = false;

	if (commitq == NULL || !any_in_flight(keys, n))
		return true;

	/*
	 * Wait for what was queued before now, not for the counters to read
	 * zero: commits that come later would keep them up under a steady
	 * stream of writes.  A backend's keys are queued for its own target.
	 */
	ti = OutboxCurrentTarget();
	if (ti < 0)
		return false;
	LWLockAcquire(commitq->lock, LW_SHARED);
	upto = commitq->queued[ti];
	LWLockRelease(commitq->lock);

	/*
	 * The worker does not start to let commits gather while a reader waits,
	 * and one that has started is woken: either it sees this count or we
	 * see its flag (a barrier on each side).
	 */
	if (!reader_exit_set)
	{
		before_shmem_exit(reader_uncount, (Datum) 0);
		reader_exit_set = true;
	}
	pg_atomic_fetch_add_u32(&commitq->readers, 1);
	reader_counted = true;
	PG_TRY();
	{
		Latch *l = commitq->worker_latch;

		pg_memory_barrier();
		if (l != NULL && pg_atomic_read_u32(&commitq->gathering) != 0)
			SetLatch(l);
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
		ConditionVariablePrepareToSleep(&commitq->delivered);
		for (;;)
		{
			long left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

			clear = pg_atomic_read_u64(&commitq->sent[ti]) >= upto ||
				!any_in_flight(keys, n);
			if (clear || left <= 0)
				break;
			/* a short sleep: a delivery takes one round trip */
			(void) ConditionVariableTimedSleep(&commitq->delivered, Min(left, 10),
											   PG_WAIT_EXTENSION);
		}
		ConditionVariableCancelSleep();
	}
	PG_FINALLY();
	{
		reader_uncount(0, (Datum) 0);
	}
	PG_END_TRY();
	return clear;
}

/* ---- the worker's side ---- */

/* one target's part of a delivery: its keys, where they are, whether sent */
typedef struct TargetBatch
{
	char **keys;
	int *pos; /* ring positions of the keys' items */
	int n;
	bool ok;
} TargetBatch;

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The batch's keys once each (commits of the same tables queue the same
 * keys), sorted, in a new array; b->keys keeps every item for release.
 */
static int
unique_keys(TargetBatch *b, char ***out)
{
	char **u = palloc(sizeof(char *) * Max(b->n, 1));
	int n = 0;

	memcpy(u, b->keys, sizeof(char *) * b->n);
	qsort(u, b->n, sizeof(char *), key_cmp);
	for (int i = 0; i < b->n; i++)
		if (n == 0 || strcmp(u[n - 1], u[i]) != 0)
			u[n++] = u[i];
	*out = u;
	return n;
}

/* the worker: no watermark alone to target i before then (it failed) */
static TimestampTz wm_retry_at[OUTBOX_TARGETS];

/*
 * Send target ti's keys with the watermark (when the target is not
 * blocked), as one MSET; keys that Redis did not take go to its outbox.
 * True when the watermark was written.  A
 * watermark alone is not sent to a target that failed within
 * cache_ext.retry_interval: a Redis that is down costs nothing per pass.
 */
static bool
deliver_batch(int ti, TargetBatch *b, XLogRecPtr wm)
{
	OutboxTarget *t = &outbox_shared->targets[ti];
	char *save_url = cache_ext_redis_url;
	char url[TARGET_URL_LEN];
	char wmval[32];
	char *volatile wmkey = NULL;
	TimestampTz now = GetCurrentTimestamp();
	char **uniq;
	int nuniq;

	b->ok = true;
	LWLockAcquire(outbox_shared->lock, LW_SHARED);
	strlcpy(url, t->url, sizeof(url));
	LWLockRelease(outbox_shared->lock);
	if (url[0] == '\0')
	{
		/* known only from the state file: nobody can send there yet */
		outbox_forced_target = ti;
		if (b->n > 0)
			OutboxAdd(b->keys, b->n);
		outbox_forced_target = -1;
		b->ok = false;
		return false;
	}
	if (pg_atomic_read_u32(&t->blocked) == 0 && wm != InvalidXLogRecPtr &&
		(b->n > 0 || now >= wm_retry_at[ti]))
	{
		wmkey = target_key(ti, ":wm");
		snprintf(wmval, sizeof(wmval), UINT64_FORMAT, (uint64) wm);
	}
	if (b->n == 0 && wmkey == NULL)
		return false;
	nuniq = unique_keys(b, &uniq);
	cache_ext_redis_url = url;
	outbox_forced_target = ti;
	PG_TRY();
	{
		b->ok = OutboxSendBumpsMarked(uniq, nuniq, wmkey, wmval,
									  cache_ext_invalidation_timeout);
		if (!b->ok && nuniq > 0)
			OutboxAdd(uniq, nuniq);
	}
	PG_FINALLY();
	{
		cache_ext_redis_url = save_url;
		outbox_forced_target = -1;
	}
	PG_END_TRY();
	wm_retry_at[ti] = b->ok ? 0 : TimestampTzPlusMilliseconds(now, cache_ext_retry_interval);
	return b->ok && wmkey != NULL;
}

/*
 * After target ti's batch was sent or kept in its outbox: its items are
 * done (a worker that dies later does not send or count them again), its
 * counters go down, its readers are released.  Readers of one target never
 * wait for another target's Redis.
 */
static void
release_batch(int ti, TargetBatch *b)
{
	LWLockAcquire(commitq->lock, LW_EXCLUSIVE);
	for (int i = 0; i < b->n; i++)
		commitq->items[b->pos[i]].done = true;
	LWLockRelease(commitq->lock);
	for (int i = 0; i < b->n; i++)
		pg_atomic_fetch_sub_u32(&commitq->inflight[counter_of(b->keys[i])], 1);
	pg_atomic_write_u64(&commitq->sent[ti],
						pg_atomic_read_u64(&commitq->sent[ti]) + (uint64) b->n);
	ConditionVariableBroadcast(&commitq->delivered);
}

/*
 * The worker: send everything queued, target by target, with each used
 * target's watermark.  Keys leave the queue only after Redis took them or
 * the outbox holds them, so a worker that dies on the way leaves the rest
 * for the next.  Publishes a watermark alone when it moved since the last
 * one (standbys wait on it), or when force.
 */
int
CommitQueueDeliver(bool force)
{
	XLogRecPtr wm;
	int n;
	int ncopy = 0;
	CqItem *copy;
	int *pos;
	TargetBatch batches[OUTBOX_TARGETS];
	TimestampTz start;
	long took;
	bool all_marked = true;

	if (commitq == NULL)
		return 0;
	start = GetCurrentTimestamp();
	wm = watermark_now();
	LWLockAcquire(commitq->lock, LW_SHARED);
	n = commitq->count;
	LWLockRelease(commitq->lock);
	if (n == 0 && !force && wm == last_published)
		return 0;

	copy = palloc(sizeof(CqItem) * Max(n, 1));
	pos = palloc(sizeof(int) * Max(n, 1));
	LWLockAcquire(commitq->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
	{
		int p = (commitq->head + i) % CQ_CAPACITY;

		if (commitq->items[p].done)
			continue;
		copy[ncopy] = commitq->items[p];
		pos[ncopy++] = p;
	}
	LWLockRelease(commitq->lock);

	memset(batches, 0, sizeof(batches));
	for (int ti = 0; ti < OUTBOX_TARGETS; ti++)
	{
		batches[ti].keys = palloc(sizeof(char *) * Max(ncopy, 1));
		batches[ti].pos = palloc(sizeof(int) * Max(ncopy, 1));
	}
	for (int i = 0; i < ncopy; i++)
	{
		TargetBatch *b = &batches[copy[i].target];

		b->keys[b->n] = copy[i].key;
		b->pos[b->n++] = pos[i];
	}
	/* targets with keys first: a watermark alone never delays a commit's */
	for (int pass = 0; pass < 2; pass++)
		for (int ti = 0; ti < OUTBOX_TARGETS; ti++)
		{
			bool used;

			if ((pass == 0) != (batches[ti].n > 0))
				continue;
			LWLockAcquire(outbox_shared->lock, LW_SHARED);
			used = outbox_shared->targets[ti].used;
			LWLockRelease(outbox_shared->lock);
			if (!used && batches[ti].n == 0)
				continue;
			if (!deliver_batch(ti, &batches[ti], wm))
				all_marked = false;
			if (batches[ti].n > 0)
				release_batch(ti, &batches[ti]);
		}

	/* the done items at the head leave the queue */
	LWLockAcquire(commitq->lock, LW_EXCLUSIVE);
	while (commitq->count > 0 && commitq->items[commitq->head].done)
	{
		commitq->head = (commitq->head + 1) % CQ_CAPACITY;
		commitq->count--;
	}
	LWLockRelease(commitq->lock);
	/* a target that did not take it (blocked, down) is tried again */
	if (all_marked)
		last_published = wm;
	took = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
	if (took >= 100)
		ereport(LOG,
				(errmsg("cache_ext took %ld ms to send the invalidations of %d queued keys", took, ncopy),
				 errdetail("Readers of the tables they invalidate waited meanwhile.")));
	return ncopy;
}

/*
 * Whether the worker should come back every cache_ext.watermark_interval:
 * a WAL sender is running (a hot standby may be waiting for the watermark
 * to reach what it replayed).  Reads each sender's pid without its
 * spinlock: a stale answer costs one interval at most.
 */
bool
CommitQueueStandbysConnected(void)
{
	if (commitq == NULL || WalSndCtl == NULL || RecoveryInProgress())
		return false;
	for (int i = 0; i < max_wal_senders; i++)
		if (((volatile WalSnd *) &WalSndCtl->walsnds[i])->pid != 0)
			return true;
	return false;
}

/* ---- the standby's side ---- */

/* the last comparison of CommitQueueWatermarkCovers, for its reason */
static XLogRecPtr last_mark = InvalidXLogRecPtr;
static XLogRecPtr last_replay = InvalidXLogRecPtr;

/* The watermark key of this backend's target, or NULL when it has none. */
char *
CommitQueueMarkKey(void)
{
	int ti = OutboxCurrentTarget();

	return ti < 0 ? NULL : target_key(ti, ":wm");
}

/*
 * Hot standby, after the lookup: whether the watermark read (first) in the
 * lookup's round trip (parsed by StoreReplyMark: anything but a decimal
 * LSN is none) covers the replay position read before it.
 */
bool
CommitQueueWatermarkCovers(bool has_mark, uint64 mark, XLogRecPtr replay)
{
	last_replay = replay;
	last_mark = has_mark ? (XLogRecPtr) mark : InvalidXLogRecPtr;
	return has_mark && (XLogRecPtr) mark >= replay;
}

/*
 * How long a standby waits for the watermark to reach its replay position:
 * a few publication intervals, and the worker's idle wake-up (100 ms) when
 * a standby has just connected.
 */
int
CommitQueueMarkBudget(void)
{
	return Min(10 * cache_ext_watermark_interval + 100, cache_ext_command_timeout);
}

/*
 * Hot standby, when the watermark did not cover its replay position: read
 * it again every 2 ms until it does, for at most timeout_ms (the primary
 * publishes it every cache_ext.watermark_interval while a WAL sender runs).
 * True when it covers replay now: the caller looks up again, watermark
 * first.  Interruptible.
 */
bool
CommitQueueAwaitMark(const char *mark_key, XLogRecPtr replay, int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms);

	while (GetCurrentTimestamp() < deadline)
	{
		bool has;
		uint64 mark;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 2, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (StoreReadMark(mark_key, &has, &mark) != STORE_OK)
			return false;
		if (CommitQueueWatermarkCovers(has, mark, replay))
			return true;
	}
	return false;
}

/* Why the last comparison failed, for cache_status(). */
char *
CommitQueueWatermarkWhy(void)
{
	if (last_mark == InvalidXLogRecPtr)
		return psprintf("hot standby: the primary publishes no invalidation watermark in Redis (replayed here: %X/%X)",
						LSN_FORMAT_ARGS(last_replay));
	return psprintf("hot standby: the primary has confirmed the invalidations of the WAL up to %X/%X in Redis, this server replays %X/%X",
					LSN_FORMAT_ARGS(last_mark), LSN_FORMAT_ARGS(last_replay));
}

/* ---- the queue's background worker ---- */

/* The settings of the commit queue's worker. */
void
CommitQueueDefineGucs(void)
{
	DefineCustomIntVariable("cache_ext.commit_queue_delay",
							"How long the commit queue's worker lets commits gather after it sent some.",
							"Under a stream of commits one MSET then carries several, at less CPU per commit. A reader that waits for a bump ends it at once. 0 sends as soon as a commit is queued.",
							&cache_ext_commit_queue_delay,
							1, 0, 100,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* The worker exits: commits send their own bumps from now on. */
static void
queue_worker_exit(int code, Datum arg)
{
	if (commitq != NULL && commitq->worker_latch == MyLatch)
		commitq->worker_latch = NULL;
}

PGDLLEXPORT void CommitQueueWorkerMain(Datum arg);

/*
 * The background worker "cache_ext commit queue" (primary only): sends the
 * queue whenever a commit wakes it, and publishes the watermark every
 * cache_ext.watermark_interval while a WAL sender runs, else every quarter
 * of cache_ext.standby_lease.  A worker of its own, so that the outbox
 * worker's waits on a Redis that is down (connecting, the lease) never
 * hold commits' bumps back.  On SIGTERM it sends what is queued, then
 * exits.
 */
void
CommitQueueWorkerMain(Datum arg)
{
	MemoryContext cxt;
	TimestampTz next_force = 0;
	int sent;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	cxt = AllocSetContextCreate(TopMemoryContext, "cache_ext commit queue",
								ALLOCSET_DEFAULT_SIZES);
	before_shmem_exit(queue_worker_exit, (Datum) 0);
	pg_atomic_write_u64(&commitq->worker_conn, conn_settings_hash());
	/* a predecessor that died while gathering: commits wake this one */
	pg_atomic_write_u32(&commitq->gathering, 0);
	pg_write_barrier(); /* the flag before the latch that commits read */
	commitq->worker_latch = MyLatch;

	for (;;)
	{
		bool stop = ShutdownRequestPending;
		TimestampTz now = GetCurrentTimestamp();
		long wait_ms;
		MemoryContext old;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			pg_atomic_write_u64(&commitq->worker_conn, conn_settings_hash());
		}
		old = MemoryContextSwitchTo(cxt);
		sent = CommitQueueDeliver(now >= next_force);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		if (now >= next_force)
			next_force = TimestampTzPlusMilliseconds(now, Max(cache_ext_standby_lease / 4, 50));
		/* 1, not 0: an exit with 0 would unregister the worker for good */
		if (stop)
			proc_exit(1);
		/* a SIGTERM during the round trip: its latch may have been reset */
		if (ShutdownRequestPending)
			continue;

		/*
		 * It just sent: let the commits of the next moment gather, so that
		 * one MSET carries several under load.  Meanwhile commits do not
		 * set the latch (each would cost a signal and a wake-up); a reader
		 * that waits for a bump, a SIGTERM or a SIGHUP does, and ends the
		 * gathering at once.  Whatever ends it, the queue is sent next: the
		 * latch is reset before, so a commit queued at any time is in it.
		 */
		if (sent > 0 && cache_ext_commit_queue_delay > 0)
		{
			ResetLatch(MyLatch);
			pg_atomic_write_u32(&commitq->gathering, 1);
			pg_memory_barrier();
			/* a signal that came before the reset, a filling queue: no wait */
			if (pg_atomic_read_u32(&commitq->readers) == 0 && !queue_filling() &&
				!ShutdownRequestPending && !ConfigReloadPending)
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 cache_ext_commit_queue_delay, PG_WAIT_EXTENSION);
			pg_atomic_write_u32(&commitq->gathering, 0);
			pg_memory_barrier();
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}

		/*
		 * Every watermark_interval while a WAL sender runs; otherwise at
		 * least every 100 ms, so that a standby that connects waits little
		 * for its first watermarks.
		 */
		wait_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_force);
		wait_ms = Min(wait_ms, CommitQueueStandbysConnected() ? cache_ext_watermark_interval : 100);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(wait_ms, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
