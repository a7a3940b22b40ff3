/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  The shared-memory outbox of undelivered invalidations, the
 *	  server-wide invalidation state, and the standby lease (docs/architecture.md §2
 *	  C3, §3).
 *
 * Targets.  A target is one Redis URL with one server-generation key (key
 * prefix and server scope): with ALTER DATABASE/ROLE ... SET
 * cache_ext.redis_url one server writes to several.  A small fixed table of
 * targets lives in shared memory; each has its own outbox (bumps that
 * could not be delivered at commit), the Redis run_id last seen there,
 * whether this server incarnation has checked its token there, and which
 * server-generation bump it last received.  A backend's target is the one
 * its current settings name; it delivers only its own target's items, and
 * its hits are blocked only by its own target's state:
 *
 *	 blocked = items waiting
 *			 + (a server bump requested and not yet delivered here)
 *			 + (this incarnation has not compared its token here yet)
 *
 * Server-wide requests (crash, promotion, lost bumps that belong to no
 * target) increment one counter, "requested"; each target remembers the
 * value it last delivered, so that every target, including one first seen
 * later, bumps its server generation before it serves hits again.  When
 * the table is full a new target gets no slot: its hits stay blocked and
 * bumps meant for it count as lost (fail closed).
 *
 * Incarnations.  Each start of the server draws a random token.  A clean
 * shutdown writes, per target, the Redis run_id and the token that Redis
 * should hold (this incarnation's where it was checked, else the one it had)
 * to the state file; the next start reads and deletes it.  Before a target
 * serves its first hit, its token in Redis is swapped for the new
 * incarnation's (SET ... GET) and the old one compared with the file's: a
 * difference means that Redis saw another incarnation after the one that
 * shut down cleanly (the data directory was restored from an older copy,
 * whose writes since are unknown), or lost the token: bump that target's
 * server generation.
 *
 * The standby lease.  Standbys cannot see this memory.  A background
 * worker on the primary renews a key (<base>:lease, PX
 * cache_ext.standby_lease) on each target while its outbox is empty, no
 * server bump is due and no commit whose bumps are in flight began before
 * its previous renewal; it deletes the key when the target becomes
 * blocked.  A hot standby serves a hit only while it has seen the lease
 * alive (InvalHitsBlocked asks standby_lease_alive).  The worker also
 * delivers the outboxes.
 *
 * Redis is reached through the store (store/store.h): bumps, the token
 * swap and the lease are its operations; the store tells on_redis_connect
 * of each new connection's run_id.
 *
 * Locking.  One LWLock (tranche "cache_ext", outbox_shared->lock) guards
 * OutboxShared; the comment on each field of OutboxShared and OutboxTarget
 * says which of these rules applies to it:
 *	 lock		read and written only under the LWLock (writers hold it in
 *				exclusive mode, readers in either mode);
 *	 atomic		a pg_atomic_*, written under the LWLock in exclusive mode
 *				(unless said otherwise) and read alone, without it: the
 *				hit path reads only these ("blocked", "epoch"), so a hit
 *				takes no lock here;
 *	 constant	written when the shared memory is created (by the postmaster,
 *				before any other process attaches) and never after: read
 *				without the lock;
 *	 claim		written under the LWLock in exclusive mode when the target's
 *				slot is claimed (used becomes true), never changed after:
 *				a process that found the slot in use under the lock (as
 *				current_target does) reads them without it.
 * Two exceptions run when no other process is attached: InvalShmemInit (at
 * creation) and outbox_state.c's write_state_file (at the postmaster's exit) touch every
 * field without the lock.  A backend-local flag (promotion_seen) keeps the
 * hit path from reading in_recovery once the server is out of recovery.
 *
 * A target's outbox is sent by one process at a time (delivering_pid); the
 * lock is never held across a Redis round trip, and nothing that can raise
 * an error runs between setting delivering_pid and the PG_TRY that clears
 * it (a process that exits while delivering clears it in a
 * before_shmem_exit callback).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/twophase.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "commitq.h"
#include "invalidate.h"
#include "keys.h"
#include "l1.h"
#include "outbox.h"
#include "outbox_internal.h"
#include "store/store.h"


int cache_ext_standby_lease = 2000; /* ms */

OutboxShared *outbox_shared = NULL;

/* the target a worker or a delivery works on; -1: the backend's own */
int outbox_forced_target = -1;

/* this backend's target, for the settings it was found for */
static int my_target = -1;
static char *my_url = NULL;
static char *my_prefix = NULL;

bool outbox_exit_callback_set = false;

static Size
outbox_shmem_size(void)
{
	return add_size(offsetof(OutboxShared, commit_began),
					mul_size(sizeof(pg_atomic_uint64),
							 PROC_SLOTS()));
}

void
InvalShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(outbox_shmem_size()));
	RequestNamedLWLockTranche("cache_ext", 1);
}

/*
 * With the lock held in exclusive mode (or at creation, before any other
 * process attaches): recompute t's blocked count after a change, and
 * advance the epoch when it changed.
 */
void
update_blocked(OutboxTarget *t)
{
	uint32 b;

	Assert(!IsUnderPostmaster || LWLockHeldByMeInMode(outbox_shared->lock, LW_EXCLUSIVE));
	b = t->nitems;

	if (outbox_shared->requested > t->delivered || t->want_bump > t->done_bump)
		b++;
	if (!t->checked)
		b++;

	/*
	 * The epoch tells a lookup in flight that hits were blocked meanwhile:
	 * only a change counts (the worker recomputes this on every pass, and
	 * a spurious change would bypass lookups that took a while).  A count
	 * that stays above zero needs no epoch: the lookup sees it anyway.
	 */
	if (pg_atomic_read_u32(&t->blocked) != b)
	{
		pg_atomic_write_u32(&t->blocked, b);
		pg_atomic_fetch_add_u64(&outbox_shared->epoch, 1);
	}
}

/* update_blocked for every target in use; the same lock rule. */
static void
update_all_blocked(void)
{
	for (int i = 0; i < OUTBOX_TARGETS; i++)
		if (outbox_shared->targets[i].used)
			update_blocked(&outbox_shared->targets[i]);
}

/* Invalidate everything this server stored, on every target, before hits. */
void
OutboxRequestServerBump(void)
{
	LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);
	outbox_shared->requested++;
	update_all_blocked();
	LWLockRelease(outbox_shared->lock);
	/* the local tier holds what this server stored too: after the request */
	L1GenBumpAll();
}

void
InvalShmemInit(void)
{
	bool found;

	outbox_shared = ShmemInitStruct("cache_ext invalidation", outbox_shmem_size(),
									&found);
	if (!found)
	{
		bool standby = access(STANDBY_SIGNAL_FILE, F_OK) == 0;

		memset(outbox_shared, 0, outbox_shmem_size());
		outbox_shared->lock = &(GetNamedLWLockTranche("cache_ext"))->lock;
		pg_atomic_init_u64(&outbox_shared->epoch, 0);
		outbox_shared->nslots = PROC_SLOTS();
		for (int i = 0; i < outbox_shared->nslots; i++)
			pg_atomic_init_u64(&outbox_shared->commit_began[i], 0);
		for (int i = 0; i < OUTBOX_TARGETS; i++)
		{
			pg_atomic_init_u32(&outbox_shared->targets[i].blocked, 0);
			pg_atomic_init_u64(&outbox_shared->targets[i].fence_until, 0);
			pg_atomic_init_u64(&outbox_shared->targets[i].identity_seq, 0);
			pg_atomic_init_u32(&outbox_shared->targets[i].blind, 0);
		}
		InvalFreshValue(outbox_shared->token);

		if (!last_shutdown_clean() && !standby)
		{
			/* bumps may have been lost: invalidate everything first */
			outbox_shared->requested = 1;
			ereport(LOG,
					(errmsg("cache_ext will invalidate every cached result before serving hits"),
					 errdetail("The server did not shut down cleanly, so invalidations may have been lost.")));
		}

		/*
		 * A standby writes nothing, so it has no invalidations to lose and
		 * no token to check; but once promoted (as after targeted recovery)
		 * it takes over from a primary whose undelivered invalidations died
		 * with it, or goes back in time: bump the server generation then.
		 */
		outbox_shared->in_recovery = standby || access(RECOVERY_SIGNAL_FILE, F_OK) == 0;
		for (int i = 0; i < OUTBOX_TARGETS; i++)
			outbox_shared->targets[i].checked = standby;
		update_all_blocked();
		if (!IsUnderPostmaster)
			on_shmem_exit(write_state_file, (Datum) 0);
	}
}

bool
InvalShmemReady(void)
{
	return outbox_shared != NULL;
}

/* ---- targets ---- */

/* Let the background worker deliver or renew now rather than later. */
static void
wake_worker(void)
{
	Latch *l = outbox_shared->worker_latch;

	if (l != NULL)
		SetLatch(l);
}

/* A process that exits while delivering lets the others deliver. */
void
release_delivering(int code, Datum arg)
{
	if (outbox_shared == NULL)
		return;
	LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < OUTBOX_TARGETS; i++)
		if (outbox_shared->targets[i].delivering_pid == MyProcPid)
			outbox_shared->targets[i].delivering_pid = 0;
	if (outbox_shared->worker_latch == MyLatch)
		outbox_shared->worker_latch = NULL;
	LWLockRelease(outbox_shared->lock);
	OutboxCommitEnd();
}

/*
 * The slot of the target the current settings name (or the forced one),
 * created if need be; -1 when Redis is not configured, the URL is too long
 * or the table is full (the caller fails closed).
 */
int
current_target(void)
{
	const char *url = cache_ext_redis_url ? cache_ext_redis_url : "";
	const char *prefix = cache_ext_key_prefix ? cache_ext_key_prefix : "";
	char *gen;
	size_t blen;
	uint64 h;
	int found = -1;

	if (outbox_forced_target >= 0)
		return outbox_forced_target;
	if (outbox_shared == NULL || url[0] == '\0' || strlen(url) >= TARGET_URL_LEN)
		return -1;
	if (my_target >= 0 && strcmp(my_url, url) == 0 &&
		strcmp(my_prefix, prefix) == 0)
		return my_target;

	/* "<prefix>s<scope>:g" names the server generation; base drops ":g" */
	gen = KeyServerGenName();
	blen = strlen(gen) - 2;
	if (blen >= TARGET_BASE_LEN)
		return -1;
	gen[blen] = '\0';
	h = hash_bytes_extended((const unsigned char *) url, strlen(url), 0);

	LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < OUTBOX_TARGETS && found < 0; i++)
	{
		OutboxTarget *t = &outbox_shared->targets[i];

		if (t->used && t->url_hash == h && strcmp(t->base, gen) == 0)
		{
			if (t->url[0] == '\0')
				strlcpy(t->url, url, sizeof(t->url));
			found = i;
		}
	}
	for (int i = 0; i < OUTBOX_TARGETS && found < 0; i++)
	{
		OutboxTarget *t = &outbox_shared->targets[i];

		if (!t->used)
		{
			/* a new target owes every server bump requested so far */
			t->used = true;
			t->url_hash = h;
			strlcpy(t->url, url, sizeof(t->url));
			strlcpy(t->base, gen, sizeof(t->base));
			t->delivered = 0;
			t->checked = outbox_shared->in_recovery;
			update_blocked(t);
			found = i;
		}
	}
	LWLockRelease(outbox_shared->lock);
	pfree(gen);
	if (found < 0)
		return -1;

	if (my_url)
		pfree(my_url);
	if (my_prefix)
		pfree(my_prefix);
	my_url = MemoryContextStrdup(TopMemoryContext, url);
	my_prefix = MemoryContextStrdup(TopMemoryContext, prefix);
	my_target = found;
	if (!outbox_exit_callback_set)
	{
		before_shmem_exit(release_delivering, (Datum) 0);
		outbox_exit_callback_set = true;
	}
	return found;
}

/* A key of target t: its base and a suffix such as ":g". */
char *
target_key(int t, const char *suffix)
{
	return psprintf("%s%s", outbox_shared->targets[t].base, suffix);
}

/*
 * The store's home key (a Redis Cluster's keyless commands go to its
 * slot): this backend's target's base, which carries its database's tag.
 */
static char *
home_key(void)
{
	int ti = outbox_shared ? current_target() : -1;

	return ti < 0 ? NULL : target_key(ti, "");
}

/*
 * Keys waiting for this backend's target, in the outbox or the commit
 * queue, +1 when it owes a server bump.
 */
int64
InvalPendingCount(void)
{
	int64 n;
	int ti = outbox_shared ? current_target() : -1;
	OutboxTarget *t;

	if (ti < 0)
		return 0;
	t = &outbox_shared->targets[ti];
	LWLockAcquire(outbox_shared->lock, LW_SHARED);
	n = t->nitems + ((outbox_shared->requested > t->delivered || t->want_bump > t->done_bump) ? 1 : 0);
	LWLockRelease(outbox_shared->lock);
	/* and those on their way: queued at commit, not yet sent (commitq.c) */
	return n + CommitQueueCountFor(ti);
}

/*
 * Keys whose bump could not be delivered: keep them in the outbox of the
 * target they were meant for, until they are.  Without a target (Redis not
 * configured here, or no free slot) nobody can tell where they belong:
 * every target bumps its server generation.
 */
void
OutboxAdd(char **keys, int n)
{
	int ti = current_target();

	LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);
	if (ti < 0)
	{
		outbox_shared->requested++;
		outbox_shared->lost = true;
		update_all_blocked();
	}
	else
	{
		OutboxTarget *t = &outbox_shared->targets[ti];

		if (t->nitems + n > OUTBOX_SIZE)
		{
			/* too many to keep: bump the server generation instead */
			t->nitems = 0;
			t->version++;
			t->want_bump++;
			CacheStatsAdd(CS_OUTBOX_OVERFLOWS, 1);
		}
		else
		{
			for (int i = 0; i < n; i++)
				strlcpy(t->items[t->nitems++], keys[i], INVAL_KEY_LEN);
		}
		update_blocked(t);
	}
	LWLockRelease(outbox_shared->lock);
	wake_worker();
	CacheStatsAdd(CS_BUMPS_DEFERRED, n);
}

/*
 * The values of this process: a 96-bit random nonce drawn once per process
 * (and again after 2^32 values) and a counter.  Backend-local; the PID
 * tells a child that the nonce it inherited from the postmaster is not its
 * own.
 */
static int value_pid = 0;
static uint8 value_nonce[12];
static uint32 value_count = 0;

/*
 * A value never used before for a generation, 32 hex digits: this
 * process's nonce and a counter.  Two processes repeat a value only if
 * they drew the same 96 random bits.  A generation needs a value never used
 * before, not an unpredictable one: anyone who can write it can write any
 * value.  Drawing 128 random bits per value (OpenSSL's RAND_bytes, a
 * getpid() for its fork check) cost about 8 us per commit.
 */
void
InvalFreshValue(char *buf)
{
	static const char hex[] = "0123456789abcdef";
	uint8 v[16];

	if (value_pid != MyProcPid || value_count == PG_UINT32_MAX)
	{
		if (!pg_strong_random(value_nonce, sizeof(value_nonce)))
		{
			/* not expected; time and PID still make a nonce never used before */
			uint64 t = (uint64) GetCurrentTimestamp();
			uint32 p = (uint32) MyProcPid;

			memcpy(value_nonce, &t, 8);
			memcpy(value_nonce + 8, &p, 4);
		}
		value_pid = MyProcPid;
		value_count = 0;
	}
	value_count++;
	memcpy(v, value_nonce, 12);
	for (int i = 0; i < 4; i++)
		v[12 + i] = (uint8) (value_count >> (24 - 8 * i));
	for (int i = 0; i < 16; i++)
	{
		buf[2 * i] = hex[v[i] >> 4];
		buf[2 * i + 1] = hex[v[i] & 0xf];
	}
	buf[32] = '\0';
}

/* MSET every key to one fresh value; true when Redis took it. */
bool
OutboxSendBumps(char **keys, int n, int timeout_ms)
{
	return OutboxSendBumpsMarked(keys, n, NULL, NULL, timeout_ms);
}

/* The same, with mark_key set to mark_val in the same MSET (when not NULL). */
bool
OutboxSendBumpsMarked(char **keys, int n, const char *mark_key,
					  const char *mark_val, int timeout_ms)
{
	char value[33];

	if (n == 0 && mark_key == NULL)
		return true;
	InvalFreshValue(value);
	if (!StoreBump(keys, n, value, mark_key, mark_val, timeout_ms))
		return false;
	CacheStatsAdd(CS_BUMPS_SENT, n);
	return true;
}

/* This backend's target (for the commit queue), or -1. */
int
OutboxCurrentTarget(void)
{
	return outbox_shared ? current_target() : -1;
}

/*
 * The incarnation check at target ti: replace Redis's token with this
 * incarnation's and say whether the old one proves that nothing was missed
 * (*mismatch false).  False when Redis could not be asked.
 */
static bool
swap_token(int ti, bool *mismatch)
{
	const char *ft = outbox_shared->targets[ti].file_token;
	StoreTokenPrev prev;

	*mismatch = false;
	/* SET ... GET (Redis 6.2): the documented ACL rules already allow SET */
	if (StoreSwapToken(target_key(ti, ":incarnation"), outbox_shared->token, ft,
					   &prev) != STORE_OK)
		return false;
	if (prev == STORE_TOKEN_NONE)
		*mismatch = ft[0] != '\0'; /* Redis lost it */
	else
		*mismatch = prev != STORE_TOKEN_KNOWN;
	if (prev == STORE_TOKEN_MINE)
		ereport(LOG,
				(errmsg("cache_ext lost the reply to its incarnation check at one Redis target"),
				 errdetail("What the token replaced is unknown, so every cached result there is invalidated.")));
	return true;
}

/*
 * Another process is sending t's outbox (the worker, often): wait for it,
 * as long as a call would wait for Redis itself, rather than bypass.
 */
static void
wait_for_delivery(OutboxTarget *t, int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms);
	bool other = true;

	while (other && GetCurrentTimestamp() < deadline)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 2, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(outbox_shared->lock, LW_SHARED);
		other = t->delivering_pid != 0;
		LWLockRelease(outbox_shared->lock);
	}
}

/*
 * Try to deliver what target ti owes: the incarnation check, the server
 * bump, the items.  One process at a time per target; the others return
 * at once.  Returns false only when it tried and Redis failed.  Throws
 * only on interrupts, with delivering_pid cleared.
 */
bool
deliver_target(int ti, int timeout_ms)
{
	OutboxTarget *t = &outbox_shared->targets[ti];
	uint64 requested;
	uint64 want;
	uint64 version;
	int n;
	bool check;
	bool bump;
	char *buf;
	volatile bool checked = false;
	volatile bool mismatch = false;
	volatile bool ok = false;
	volatile bool bumped = false;
	int save_forced = outbox_forced_target;

	if (pg_atomic_read_u32(&t->blocked) == 0)
		return true;
	/* everything that can fail to allocate comes before delivering_pid */
	buf = palloc(sizeof(char *) * OUTBOX_SIZE + (Size) OUTBOX_SIZE * INVAL_KEY_LEN);
	if (!outbox_exit_callback_set)
	{
		before_shmem_exit(release_delivering, (Datum) 0);
		outbox_exit_callback_set = true;
	}

	LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);
	if (t->delivering_pid != 0 || pg_atomic_read_u32(&t->blocked) == 0)
	{
		bool other = t->delivering_pid != 0;

		LWLockRelease(outbox_shared->lock);
		pfree(buf);
		if (other)
			wait_for_delivery(t, timeout_ms);
		return true;
	}
	t->delivering_pid = MyProcPid;
	requested = outbox_shared->requested;
	version = t->version;
	check = !t->checked;
	want = t->want_bump;
	bump = requested > t->delivered || want > t->done_bump;
	n = t->nitems;
	memcpy(buf + sizeof(char *) * OUTBOX_SIZE, t->items, (Size) n * INVAL_KEY_LEN);
	LWLockRelease(outbox_shared->lock);

	PG_TRY();
	{
		char **keys = (char **) buf;
		char *server_gen;

		outbox_forced_target = ti;
		for (int i = 0; i < n; i++)
			keys[i] = buf + sizeof(char *) * OUTBOX_SIZE + (Size) i * INVAL_KEY_LEN;
		ok = true;
		if (check)
		{
			bool mm;

			ok = swap_token(ti, &mm);
			checked = ok;
			mismatch = ok && mm;
		}
		if (ok && (bump || mismatch))
		{
			/* the server generation covers every item */
			server_gen = target_key(ti, ":g");
			ok = OutboxSendBumps(&server_gen, 1, timeout_ms);
			bumped = ok;
		}
		else if (ok)
			ok = OutboxSendBumps(keys, n, timeout_ms);
	}
	PG_FINALLY();
	{
		outbox_forced_target = save_forced;
		LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);
		t->delivering_pid = 0;
		if (checked)
			t->checked = true;
		if (mismatch && !bumped)
			t->want_bump++;
		if (mismatch)
			L1GenBumpAll(); /* Redis may have lost bumps L1 took entries under */
		if (bumped)
		{
			if (requested > t->delivered)
				t->delivered = requested;
			if (want > t->done_bump)
				t->done_bump = want;
		}
		if (ok && version == t->version)
		{
			/* items added meanwhile stay */
			memmove(t->items[0], t->items[n],
					(size_t) (t->nitems - n) * INVAL_KEY_LEN);
			t->nitems -= n;
		}
		update_blocked(t);
		LWLockRelease(outbox_shared->lock);
	}
	PG_END_TRY();
	pfree(buf);
	if (mismatch)
		ereport(LOG,
				(errmsg("cache_ext will invalidate every cached result before serving hits"),
				 errdetail("The incarnation token in Redis is not the one this data directory shut down with: it was restored from an older copy, or Redis lost the token.")));
	if (ok && pg_atomic_read_u32(&t->blocked) == 0 && (n > 0 || bump || mismatch))
		ereport(LOG,
				(errmsg("cache_ext delivered the invalidations it was holding; hits are served again")));
	return ok;
}

/* Keys waiting for this backend's target (cache_health, not the hit path). */
int
InvalOutboxDepth(void)
{
	int ti = outbox_shared ? current_target() : -1;
	int n;

	if (ti < 0)
		return 0;
	LWLockAcquire(outbox_shared->lock, LW_SHARED);
	n = outbox_shared->targets[ti].nitems;
	LWLockRelease(outbox_shared->lock);
	return n;
}

/* The epoch, to hand to InvalHitsBlockedSince later: an atomic, no lock. */
uint64
InvalEpoch(void)
{
	return outbox_shared ? pg_atomic_read_u64(&outbox_shared->epoch) : 0;
}

/*
 * Whether hits are blocked now, or were blocked at some moment since
 * InvalEpoch() returned epoch.  On the hit path: reads atomics only.
 */
bool
InvalHitsBlockedSince(uint64 epoch)
{
	int ti;

	if (outbox_shared == NULL)
		return false;
	ti = current_target();
	if (ti < 0)
		return true;
	return pg_atomic_read_u32(&outbox_shared->targets[ti].blocked) != 0 ||
		pg_atomic_read_u64(&outbox_shared->epoch) != epoch;
}

/*
 * Whether this process has seen in_recovery false under the lock: as
 * in_recovery never goes back to true, it need not look again.
 */
static bool promotion_seen = false;

/*
 * The first call after a promotion asks for the server bump.  Called on
 * every InvalHitsBlocked: in recovery it costs RecoveryInProgress(), after
 * it one look under the lock in shared mode per process.
 */
void
check_promotion(void)
{
	bool due;

	if (promotion_seen || RecoveryInProgress())
		return;
	LWLockAcquire(outbox_shared->lock, LW_SHARED);
	due = outbox_shared->in_recovery;
	LWLockRelease(outbox_shared->lock);
	if (!due)
	{
		promotion_seen = true;
		return;
	}
	LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);
	if (outbox_shared->in_recovery)
	{
		outbox_shared->in_recovery = false;
		outbox_shared->requested++;
		/* the new primary's token replaces the old primary's */
		for (int i = 0; i < OUTBOX_TARGETS; i++)
			outbox_shared->targets[i].checked = false;
		update_all_blocked();
		ereport(LOG,
				(errmsg("cache_ext will invalidate every cached result before serving hits"),
				 errdetail("This server was promoted: the former primary may not have delivered all its invalidations.")));
	}
	LWLockRelease(outbox_shared->lock);
	promotion_seen = true;
}

/* why the last InvalHitsBlocked() returned true */
static const char *blocked_reason = NULL;
static QueryStatsReason blocked_kind = QS_PENDING;

#define REASON_PENDING "pending invalidations (this server holds invalidations Redis has not taken yet)"

/*
 * Hot standby: whether the primary's lease at target ti is alive, reading
 * it (one round trip) only when the lease last seen has run out and
 * may_ask.  The lease is taken to end its PTTL after the request was sent:
 * never later than Redis will expire it.
 */
static bool
standby_lease_alive(int ti, bool may_ask)
{
	OutboxTarget *t = &outbox_shared->targets[ti];
	TimestampTz now = GetCurrentTimestamp();
	int64 ms = -1;

	if (now < (TimestampTz) pg_atomic_read_u64(&t->fence_until))
		return true;
	if (!may_ask)
		return false;
	(void) StoreLeaseTtl(target_key(ti, ":lease"), &ms);
	if (ms <= 0)
		return false;
	pg_atomic_write_u64(&t->fence_until,
						(uint64) TimestampTzPlusMilliseconds(now, (int) Min(ms, 3600000)));
	return true;
}

/*
 * Whether this backend's hits are blocked (the reason is kept for
 * InvalHitsBlockedReason); when try_deliver, it first tries to deliver what
 * its target owes.  On the hit path (nothing owed, not a standby) it reads
 * only atomics and backend-local state, and takes no lock.
 */
bool
InvalHitsBlocked(bool try_deliver)
{
	int ti;
	bool failed = false;

	blocked_reason = NULL;
	blocked_kind = QS_PENDING;
	if (outbox_shared == NULL)
		return false;
	check_promotion();
	ti = current_target();
	if (ti < 0)
	{
		blocked_reason = cache_ext_redis_url && cache_ext_redis_url[0] &&
				strlen(cache_ext_redis_url) < TARGET_URL_LEN ?
			"pending invalidations (too many Redis servers or key prefixes in use: this server keeps invalidation state for 8)" :
			REASON_PENDING;
		return true;
	}
	if (pg_atomic_read_u32(&outbox_shared->targets[ti].blocked) != 0 && try_deliver)
	{
		failed = !deliver_target(ti, cache_ext_command_timeout);
		/* connecting to send them may have found that Redis restarted */
		if (!failed && pg_atomic_read_u32(&outbox_shared->targets[ti].blocked) != 0)
			failed = !deliver_target(ti, cache_ext_command_timeout);
	}
	if (pg_atomic_read_u32(&outbox_shared->targets[ti].blocked) != 0)
	{
		int nitems;

		/* blocked: off the hit path, so the lock is cheap here */
		LWLockAcquire(outbox_shared->lock, LW_SHARED);
		nitems = outbox_shared->targets[ti].nitems;
		LWLockRelease(outbox_shared->lock);
		/* none of this target's own writes wait: Redis is the problem */
		if (failed && nitems == 0)
		{
			blocked_reason = psprintf("redis unavailable (%s)", StoreLastError());
			blocked_kind = QS_REDIS;
		}
		else
			blocked_reason = REASON_PENDING;
		return true;
	}
	if (RecoveryInProgress() && !standby_lease_alive(ti, try_deliver))
	{
		blocked_reason = "pending invalidations (hot standby: the primary's lease in Redis has run out: the primary may hold invalidations it has not delivered, or does not run cache_ext's background worker)";
		return true;
	}
	return false;
}

const char *
InvalHitsBlockedReason(void)
{
	return blocked_reason ? blocked_reason : REASON_PENDING;
}

/* Why InvalHitsBlocked() said hits are blocked, as a bypass reason. */
CallReason *
InvalHitsBlockedWhy(void)
{
	return MakeReason(blocked_kind, InvalHitsBlockedReason());
}

/*
 * A background worker of this library: primary only (it starts when
 * recovery is finished), restarted a second after it exits with 1.
 */
static void
register_worker(const char *function, const char *name)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 1;
	strlcpy(w.bgw_library_name, "cache_ext", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(w.bgw_name, name, BGW_MAXLEN);
	strlcpy(w.bgw_type, name, BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

/*
 * From InvalInit (_PG_init): the lease setting; learn of Redis restarts;
 * when preloaded, the background worker; and, in a backend where cache_ext
 * is not preloaded (no ProcessUtility hook, so DDL goes unseen), remove the
 * state file so that the next preloaded start does not trust that nothing
 * was missed.
 */
void
OutboxInit(void)
{
	DefineCustomIntVariable("cache_ext.standby_lease",
							"How long a hot standby may serve hits after the primary last confirmed that it holds no undelivered invalidations.",
							"The primary's background worker renews the lease every quarter of this time.",
							&cache_ext_standby_lease,
							2000, 200, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	StoreSetServerListener(on_redis_connect, current_identity);
	StoreSetHomeKey(home_key);
	if (process_shared_preload_libraries_in_progress)
	{
		register_worker("OutboxWorkerMain", "cache_ext outbox");
		register_worker("CommitQueueWorkerMain", "cache_ext commit queue");
	}
	else
		(void) unlink(STATE_FILE);
}
