/*-------------------------------------------------------------------------
 *
 * flight.c
 *	  Single flight (stampede protection, docs/single-flight.md): when many
 *	  sessions miss the same entry at once, one of them (the filler) runs
 *	  the query and stores it; the others wait for it, then look the entry
 *	  up again with the normal validated lookup.
 *
 * Within one server, a small table in shared memory (FLIGHT_SLOTS slots,
 * each keyed by a hash of the entry's Redis key name and the database)
 * says which key is being filled and by whom; waiters sleep on the slot's
 * condition variable, bounded by cache_ext.fill_wait and interruptible.
 * Across servers sharing Redis (cache_ext.fill_lock), the filler also
 * takes a lock key in Redis (store/store_lock.c); a server that finds it
 * taken polls the entry.  A waiter never takes a result on the filler's
 * word: it looks the entry up again, and the lookup compares generations
 * as always.  Nothing here decides what a call may serve.
 *
 * A filler that errs or is cancelled releases its slot in the transaction
 * and subtransaction abort callbacks; one that exits (FATAL, terminate) in
 * a before_shmem_exit callback; one killed outright takes the whole
 * server down (the postmaster resets shared memory).  Waiters also check,
 * each time they wake and at least every FLIGHT_CHECK_MS, that the
 * filler's process still runs (its PGPROC holds the pid that took the
 * slot).  A waiter released by a fill that failed (error, cancel, exit)
 * looks up again and may become the next filler (handing over, so that a
 * cancelled fill does not become a stampede), once: after a second failed
 * fill, and after a fill that completed but could not store (too large,
 * Redis refused), it runs alone; and the next fills of a key whose last
 * fill could not store are not waited for at all.  A filler that takes over a failed fill
 * of this server also takes over its fill lock in Redis (the slot keeps
 * the token): nothing talks to Redis on the abort path.  A lock found busy
 * whose token names this server (hashed system identifier) was left by a
 * filler of this server (killed: the slot table was reset with the server;
 * or failed with nobody taking over): the caller, which holds the key's
 * slot, deletes it by its token and takes the lock.
 *
 * Shared state and its locks: FlightShared below.  "lock" is
 * flight->lock (tranche "cache_ext single flight"), held only to read or
 * change slots, never across a wait, a round trip or anything that can
 * fail; the atomics are read and written without it.
 *
 * State (backend-local): the slot this backend fills (held_*), released
 * by FlightEnd, by the abort callbacks or at exit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "portability/instr_time.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "flight.h"
#include "keys.h"
#include "store/store_lock.h"

#define FLIGHT_SLOTS	128
#define FLIGHT_CHECK_MS 100	  /* a waiter checks the filler is alive */
#define FLIGHT_POLL_MS	25	  /* a server waiting for another polls */
#define FLIGHT_WAIT_MAX 60000 /* fill_wait's maximum: a lock's longest TTL */

typedef enum SlotState
{
	SLOT_FREE,
	SLOT_FILLING,
	SLOT_STORED,   /* the fill ended and stored its entry */
	SLOT_UNSTORED, /* it ended without storing (too large, Redis) */
	SLOT_ABORTED   /* it erred, was cancelled or exited */
} SlotState;

/* Every field: lock. */
typedef struct FlightSlot
{
	uint64 key; /* slot_key() of the entry's Redis key */
	Oid dbid;
	SlotState state;
	uint64 fill_id;	 /* raised each time the slot is taken */
	uint64 done_seq; /* done_seq when the fill ended */
	int owner_procno;
	int owner_pid;
	/* its key's last fill completed but could not store: not waited for */
	bool unstorable;
	bool lock_held;						   /* its filler took the fill lock in Redis */
	char lock_token[FLIGHT_TOKEN_LEN + 1]; /* ... with this token */
	ConditionVariable cv;				   /* broadcast when the fill ends */
} FlightSlot;

typedef struct FlightShared
{
	LWLock *lock;			   /* set at creation, constant */
	pg_atomic_uint64 done_seq; /* fills ended so far (atomic) */
	pg_atomic_uint64 waits;	   /* cache_stats (atomics) */
	pg_atomic_uint64 wait_hits;
	pg_atomic_uint64 wait_us;
	FlightSlot slots[FLIGHT_SLOTS];
} FlightShared;

static FlightShared *flight = NULL;

int cache_ext_fill_wait = 2000;
bool cache_ext_fill_lock = false;

static int held_slot = -1;
static uint64 held_fill_id = 0;
static SubTransactionId held_subid = InvalidSubTransactionId;
static bool callbacks_registered = false;

void
FlightShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(FlightShared)));
	RequestNamedLWLockTranche("cache_ext single flight", 1);
}

void
FlightShmemInit(void)
{
	bool found;

	flight = ShmemInitStruct("cache_ext single flight", sizeof(FlightShared),
							 &found);
	if (found)
		return;
	flight->lock = &GetNamedLWLockTranche("cache_ext single flight")[0].lock;
	pg_atomic_init_u64(&flight->done_seq, 0);
	pg_atomic_init_u64(&flight->waits, 0);
	pg_atomic_init_u64(&flight->wait_hits, 0);
	pg_atomic_init_u64(&flight->wait_us, 0);
	for (int i = 0; i < FLIGHT_SLOTS; i++)
	{
		FlightSlot *s = &flight->slots[i];

		memset(s, 0, sizeof(*s));
		s->state = SLOT_FREE;
		ConditionVariableInit(&s->cv);
	}
}

/* The slot key of an entry's Redis key name (prefix, database, hash). */
static uint64
slot_key(const char *rkey)
{
	return hash_bytes_extended((const unsigned char *) rkey, strlen(rkey),
							   (uint64) MyDatabaseId);
}

/* With lock: whether the process that took s still runs. */
static bool
owner_alive(const FlightSlot *s)
{
	PGPROC *p = &ProcGlobal->allProcs[s->owner_procno];

	return p->pid == s->owner_pid;
}

/*
 * End the fill of slot idx, taken as fill_id, with state how, and wake its
 * waiters.  Nothing if the slot was taken over since.  Raises no error.
 */
static void
end_fill(int idx, uint64 fill_id, SlotState how)
{
	FlightSlot *s = &flight->slots[idx];
	bool ended = false;

	LWLockAcquire(flight->lock, LW_EXCLUSIVE);
	if (s->state == SLOT_FILLING && s->fill_id == fill_id)
	{
		s->state = how;
		s->done_seq = pg_atomic_add_fetch_u64(&flight->done_seq, 1);
		/* FlightEnd releases the lock; an aborted filler leaves it */
		if (how != SLOT_ABORTED)
		{
			s->lock_held = false;
			/* a standby never stores: its "unstored" says nothing of the result */
			s->unstorable = how == SLOT_UNSTORED && !RecoveryInProgress();
		}
		ended = true;
	}
	LWLockRelease(flight->lock);
	if (ended)
		ConditionVariableBroadcast(&s->cv);
}

/* Release the slot this backend fills, if any, as how. */
static void
release_held(SlotState how)
{
	int idx = held_slot;

	if (idx < 0 || flight == NULL)
		return;
	held_slot = -1;
	end_fill(idx, held_fill_id, how);
}

static void
flight_xact_callback(XactEvent event, void *arg)
{
	/* a filler's call ends before its transaction: any slot left is an error's */
	if (held_slot >= 0)
		release_held(SLOT_ABORTED);
}

static void
flight_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	/* only the subtransaction the slot was taken in, or one around it */
	if (event == SUBXACT_EVENT_ABORT_SUB && held_slot >= 0 && held_subid == mySubid)
		release_held(SLOT_ABORTED);
}

static void
flight_exit(int code, Datum arg)
{
	release_held(SLOT_ABORTED);
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(flight_xact_callback, NULL);
	RegisterSubXactCallback(flight_subxact_callback, NULL);
	before_shmem_exit(flight_exit, (Datum) 0);
	callbacks_registered = true;
}

/* Release the slot call f fills, if it still does, as how. */
static void
release_call_slot(FlightCall *f, SlotState how)
{
	if (f->slot >= 0 && held_slot == f->slot && held_fill_id == f->fill_id)
	{
		held_slot = -1;
		end_fill(f->slot, f->fill_id, how);
	}
	f->slot = -1;
}

/* FlightCallInit (flight.h) */
void
FlightCallInit(FlightCall *f)
{
	memset(f, 0, sizeof(*f));
	f->slot = -1;
}

/*
 * Read the count of fills ended before a lookup: FlightJoin then knows
 * whether one ended since (and stored what the lookup missed).
 */
void
FlightBeforeLookup(FlightCall *f)
{
	if (flight != NULL)
		f->seq_before = pg_atomic_read_u64(&flight->done_seq);
}

static void
add_wait(FlightCall *f, instr_time start)
{
	instr_time t;

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, start);
	f->wait_us += INSTR_TIME_GET_MICROSEC(t);
	f->waited = true;
}

/*
 * Wait until the fill of slot idx taken as fill_id ends, its filler is
 * gone, or the call's deadline passes.  Interruptible (the condition
 * variable's sleep checks for interrupts; an error cancels the sleep in
 * the abort).  Sets f->alone when the fill completed without storing, or
 * when it is the second failed fill this call waited for: waiting for the
 * next one would serialise the calls for nothing.
 */
static void
wait_for_fill(FlightCall *f, int idx, uint64 fill_id)
{
	FlightSlot *s = &flight->slots[idx];
	instr_time start;

	INSTR_TIME_SET_CURRENT(start);
	ConditionVariablePrepareToSleep(&s->cv);
	for (;;)
	{
		bool filling;
		long left;

		LWLockAcquire(flight->lock, LW_SHARED);
		filling = s->fill_id == fill_id && s->state == SLOT_FILLING &&
			owner_alive(s);
		if (s->fill_id == fill_id && s->state == SLOT_UNSTORED)
			f->alone = true;
		/* hand over once; a second failed fill is likely the query's own */
		if (s->fill_id == fill_id && s->state == SLOT_ABORTED)
		{
			f->alone = f->saw_abort;
			f->saw_abort = true;
		}
		LWLockRelease(flight->lock);
		if (!filling)
			break;
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), f->deadline);
		if (left <= 0)
			break;
		(void) ConditionVariableTimedSleep(&s->cv, Min(left, FLIGHT_CHECK_MS),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	add_wait(f, start);
}

/*
 * The first 16 hex digits of this server's tokens: a hash of its system
 * identifier (HMAC when a key secret is set), as the key names hold it:
 * never the identifier itself.
 */
static void
server_token(char *dst)
{
	StringInfoData m;
	uint8 hash[CE_HASH_LEN];
	uint64 sysid = GetSystemIdentifier();

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext fill lock");
	KeyAddField(&m, &sysid, sizeof(sysid));
	KeyHash(&m, hash);
	pfree(m.data);
	for (int i = 0; i < 8; i++)
		snprintf(dst + 2 * i, 3, "%02x", hash[i]);
}

/* The fill lock's key name: the entry key's hash under another letter. */
static bool
make_lock_key(FlightCall *f, const char *rkey)
{
	uint8 raw[16];
	const char *e = strstr(rkey, ":e:");

	if (e == NULL)
		return false;
	while (strstr(e + 1, ":e:") != NULL)
		e = strstr(e + 1, ":e:");
	f->lock_key = psprintf("%.*s:f:%s", (int) (e - rkey), rkey, e + 3);
	if (!pg_strong_random(raw, sizeof(raw)))
		return false;
	server_token(f->token);
	for (int i = 0; i < 16; i++)
		snprintf(f->token + 16 + 2 * i, 3, "%02x", raw[i]);
	return true;
}

/* Record in the call's slot that it holds the fill lock, and its token. */
static void
note_lock(FlightCall *f)
{
	FlightSlot *s = &flight->slots[f->slot];

	LWLockAcquire(flight->lock, LW_EXCLUSIVE);
	if (s->fill_id == f->fill_id && s->state == SLOT_FILLING)
	{
		s->lock_held = true;
		memcpy(s->lock_token, f->token, sizeof(s->lock_token));
	}
	LWLockRelease(flight->lock);
}

/*
 * Wait one poll interval for another server's fill (interruptible), and
 * have the entry looked up again; FLIGHT_ALONE when the deadline passed.
 */
static FlightRole
poll_remote(FlightCall *f)
{
	long left;
	instr_time start;

	f->remote_seen = true;
	left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), f->deadline);
	if (left <= 0)
		return FLIGHT_ALONE;
	INSTR_TIME_SET_CURRENT(start);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 Min(left, FLIGHT_POLL_MS), PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	add_wait(f, start);
	return FLIGHT_RETRY;
}

static bool lock_is_live(const char *key, char *held, size_t heldlen,
						 bool *gone);

/*
 * A hot standby never stores, so it never fills: a call that holds this
 * server's slot waits while the primary (or another server) holds a live
 * fill lock, and otherwise releases the slot at once, its local waiters
 * running alone, and runs alone.
 */
static FlightRole
join_standby(FlightCall *f)
{
	char held[FLIGHT_TOKEN_LEN + 2];
	bool gone;

	if (lock_is_live(f->lock_key, held, sizeof(held), &gone) &&
		poll_remote(f) == FLIGHT_RETRY)
		return FLIGHT_RETRY;
	release_call_slot(f, SLOT_UNSTORED);
	return FLIGHT_ALONE;
}

/* Whether v (len bytes) is a token as make_lock_key writes them. */
static bool
is_token(const char *v, int64 len)
{
	if (len != FLIGHT_TOKEN_LEN || strlen(v) != FLIGHT_TOKEN_LEN)
		return false;
	for (int i = 0; i < FLIGHT_TOKEN_LEN; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			return false;
	return true;
}

/*
 * What holds the fill lock (one round trip of bounded replies: a hostile
 * value of any size or type costs nothing more): a lock cache_ext writes
 * (a token, with a TTL no longer than fill_wait's maximum), or not.  True
 * for a live lock; its token in held.  *gone: there is no lock any more.
 */
static bool
lock_is_live(const char *key, char *held, size_t heldlen, bool *gone)
{
	int64 len;
	int64 pttl;

	*gone = false;
	if (!StoreLockInspect(key, held, heldlen, &len, &pttl))
		return false;
	*gone = pttl == -2;
	return is_token(held, len) && pttl >= 0 && pttl <= FLIGHT_WAIT_MAX;
}

/*
 * The fill lock is busy.  If its token says this server took it, nobody
 * fills the key here now but the caller (who holds the key's slot), so it
 * is a lock that a filler of this server left behind: killed (the server
 * restarted, the slot table with it) or failed with nobody taking the fill
 * over.  Delete it (compare-and-delete on the token read) rather than wait
 * for it to expire, and take it.  Hot standbys share the system identifier
 * but never take the lock.  A value cache_ext cannot have written (not a
 * token, no TTL or a longer one: hostile or damaged bytes), or a Redis
 * failure, is not waited for: the caller fills without the lock
 * (STORE_LOCK_FAILED).  STORE_LOCK_BUSY: a live lock of another server,
 * or one released since (its holder may have stored: look up again).
 */
static StoreLockResult
busy_lock(FlightCall *f)
{
	char held[FLIGHT_TOKEN_LEN + 2];
	bool gone;

	if (!lock_is_live(f->lock_key, held, sizeof(held), &gone))
		return gone ? STORE_LOCK_BUSY : STORE_LOCK_FAILED;
	if (strncmp(held, f->token, 16) == 0 && StoreLockRelease(f->lock_key, held))
		return StoreLockTake(f->lock_key, f->token, cache_ext_fill_wait);
	return STORE_LOCK_BUSY;
}

/*
 * The cross-server part of a join, for a call that fills this server's
 * slot: take the fill lock in Redis, or wait a poll interval for the
 * server that holds it and have the entry looked up again.  When Redis
 * fails, or the deadline passed, the call fills without the lock.
 */
static FlightRole
join_remote(FlightCall *f, const char *rkey)
{
	StoreLockResult res;

	if (f->lock_held)
		return FLIGHT_FILLER;
	if (f->lock_key == NULL && !make_lock_key(f, rkey))
		return RecoveryInProgress() ? FLIGHT_ALONE : FLIGHT_FILLER;
	if (RecoveryInProgress())
		return join_standby(f);
	res = StoreLockTake(f->lock_key, f->token, cache_ext_fill_wait);
	if (res == STORE_LOCK_BUSY && !f->steal_tried)
	{
		f->steal_tried = true;
		res = busy_lock(f);
	}
	switch (res)
	{
		case STORE_LOCK_TAKEN:
			f->lock_held = true;
			note_lock(f);
			/* the holder may have stored and released since our lookup */
			if (f->remote_seen && !f->rechecked)
			{
				f->rechecked = true;
				return FLIGHT_RETRY;
			}
			return FLIGHT_FILLER;
		case STORE_LOCK_FAILED:
			return FLIGHT_FILLER;
		case STORE_LOCK_BUSY:
			break;
	}
	return poll_remote(f) == FLIGHT_RETRY ? FLIGHT_RETRY : FLIGHT_FILLER;
}

/*
 * Take a slot for key (the caller holds the lock exclusively): the one
 * given (s_idx >= 0), else a free one, else the one whose fill ended
 * first.  -1 when every slot is being filled.
 */
static int
take_slot(int s_idx, uint64 key)
{
	int idx = s_idx;
	FlightSlot *s;

	for (int i = 0; idx < 0 && i < FLIGHT_SLOTS; i++)
		if (flight->slots[i].state == SLOT_FREE)
			idx = i;
	if (idx < 0)
	{
		uint64 oldest = PG_UINT64_MAX;

		for (int i = 0; i < FLIGHT_SLOTS; i++)
		{
			s = &flight->slots[i];
			if (s->state != SLOT_FILLING && s->done_seq < oldest)
			{
				oldest = s->done_seq;
				idx = i;
			}
		}
		if (idx < 0)
			return -1;
	}
	s = &flight->slots[idx];
	if (idx != s_idx)
	{
		s->lock_held = false;
		s->unstorable = false;
	}
	s->key = key;
	s->dbid = MyDatabaseId;
	s->state = SLOT_FILLING;
	s->fill_id++;
	s->owner_procno = MyProc->pgprocno;
	s->owner_pid = MyProcPid;
	return idx;
}

/*
 * The call's deadline: cache_ext.fill_wait from now, and no later than half
 * of what statement_timeout leaves to the statement, so that a call whose
 * wait ends keeps time to run the query itself (a waiter must not fail
 * where the direct statement would not).
 */
static void
set_deadline(FlightCall *f)
{
	TimestampTz now = GetCurrentTimestamp();

	f->deadline = TimestampTzPlusMilliseconds(now, cache_ext_fill_wait);
	if (StatementTimeout > 0)
	{
		TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(),
													  StatementTimeout);
		long left = TimestampDifferenceMilliseconds(now, end);

		f->deadline = Min(f->deadline, TimestampTzPlusMilliseconds(now, left / 2));
	}
}

/*
 * A call that missed (no entry, stale, corrupt) and would store its result
 * asks what to do (FlightRole): fill, wait and look up again, or run
 * alone.  The first join sets the call's deadline (cache_ext.fill_wait
 * from now); a call that fills already goes on to the cross-server lock.
 * A backend that fills one entry never waits for another (a query whose
 * functions call cached_query): no cycle of waits.  May raise only on
 * interrupts (cancel, statement_timeout), while waiting.
 *
 * Long because: finding the key's slot, deciding on what it says and
 * taking one are one step under one lock.
 */
FlightRole
FlightJoin(FlightCall *f, const char *rkey)
{
	uint64 key;
	int found = -1;
	int idx;
	uint64 fill_id = 0;
	bool takeover = false;
	bool adopt = false;
	char token[FLIGHT_TOKEN_LEN + 1];

	if (flight == NULL || cache_ext_fill_wait <= 0 || f->alone)
		return FLIGHT_ALONE;
	if (f->slot >= 0)
		return cache_ext_fill_lock ? join_remote(f, rkey) : FLIGHT_FILLER;
	if (held_slot >= 0)
		return FLIGHT_ALONE;
	if (!f->joined)
	{
		f->joined = true;
		set_deadline(f);
		register_callbacks();
	}
	key = slot_key(rkey);

	LWLockAcquire(flight->lock, LW_EXCLUSIVE);
	for (int i = 0; i < FLIGHT_SLOTS; i++)
	{
		FlightSlot *s = &flight->slots[i];

		if (s->state != SLOT_FREE && s->key == key && s->dbid == MyDatabaseId)
		{
			found = i;
			break;
		}
	}
	if (found >= 0)
	{
		FlightSlot *s = &flight->slots[found];

		if (s->state == SLOT_FILLING && owner_alive(s))
		{
			bool unstorable = s->unstorable;

			fill_id = s->fill_id;
			LWLockRelease(flight->lock);
			/* its last fill could not store: this one will not either */
			if (unstorable || GetCurrentTimestamp() >= f->deadline)
				return FLIGHT_ALONE;
			wait_for_fill(f, found, fill_id);
			return FLIGHT_RETRY;
		}
		/* a fill that stored after this call's lookup was sent */
		if (s->state == SLOT_STORED && s->done_seq > f->seq_before)
		{
			LWLockRelease(flight->lock);
			f->waited = true;
			return FLIGHT_RETRY;
		}
		takeover = s->state == SLOT_FILLING; /* its filler is gone */
	}
	idx = take_slot(found, key);
	if (idx >= 0)
	{
		fill_id = flight->slots[idx].fill_id;
		adopt = flight->slots[idx].lock_held;
		if (adopt)
			memcpy(token, flight->slots[idx].lock_token, sizeof(token));
	}
	LWLockRelease(flight->lock);
	if (idx < 0)
		return FLIGHT_ALONE; /* every slot busy: never block */
	if (takeover)
		ConditionVariableBroadcast(&flight->slots[idx].cv);
	held_slot = idx;
	held_fill_id = fill_id;
	held_subid = GetCurrentSubTransactionId();
	f->slot = idx;
	f->fill_id = fill_id;
	/* the failed fill's lock in Redis, still there until it expires */
	if (adopt && make_lock_key(f, rkey))
	{
		memcpy(f->token, token, sizeof(f->token));
		f->lock_held = true;
	}
	return cache_ext_fill_lock ? join_remote(f, rkey) : FLIGHT_FILLER;
}

/*
 * The end of a call that joined (or not: then only counting): release the
 * slot it fills (stored: whether its entry was stored) and its fill lock,
 * and count its wait (hit: it ended with a hit).
 */
void
FlightEnd(FlightCall *f, bool hit, bool stored)
{
	if (f->ended)
		return;
	f->ended = true;
	/* the lock first: while this call holds the slot, nobody here takes it */
	if (f->lock_held)
	{
		f->lock_held = false;
		(void) StoreLockRelease(f->lock_key, f->token);
	}
	release_call_slot(f, stored || hit ? SLOT_STORED : SLOT_UNSTORED);
	if (f->waited && flight != NULL)
	{
		pg_atomic_fetch_add_u64(&flight->waits, 1);
		pg_atomic_fetch_add_u64(&flight->wait_us, (uint64) f->wait_us);
		if (hit)
			pg_atomic_fetch_add_u64(&flight->wait_hits, 1);
	}
}

/*
 * Whether a session of this server is filling the entry of Redis key rkey
 * now (cache_explain).
 */
bool
FlightFilling(const char *rkey)
{
	uint64 key;
	bool filling = false;

	if (flight == NULL)
		return false;
	key = slot_key(rkey);
	LWLockAcquire(flight->lock, LW_SHARED);
	for (int i = 0; i < FLIGHT_SLOTS && !filling; i++)
	{
		FlightSlot *s = &flight->slots[i];

		filling = s->state == SLOT_FILLING && s->key == key &&
			s->dbid == MyDatabaseId && owner_alive(s);
	}
	LWLockRelease(flight->lock);
	return filling;
}

/* FlightGetCounts (flight.h): zeroes when not preloaded */
void
FlightGetCounts(FlightCounts *c)
{
	memset(c, 0, sizeof(*c));
	if (flight == NULL)
		return;
	c->waits = (int64) pg_atomic_read_u64(&flight->waits);
	c->wait_hits = (int64) pg_atomic_read_u64(&flight->wait_hits);
	c->wait_ms = (double) pg_atomic_read_u64(&flight->wait_us) / 1000.0;
}

void
FlightResetCounts(void)
{
	if (flight == NULL)
		return;
	pg_atomic_write_u64(&flight->waits, 0);
	pg_atomic_write_u64(&flight->wait_hits, 0);
	pg_atomic_write_u64(&flight->wait_us, 0);
}

/* The settings of single flight. */
void
FlightDefineGucs(void)
{
	DefineCustomIntVariable("cache_ext.fill_wait",
							"Longest time a call that missed waits for another session computing the same result.",
							"0 turns single flight off. The wait also ends with statement_timeout or a cancel.",
							&cache_ext_fill_wait,
							2000, 0, FLIGHT_WAIT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("cache_ext.fill_lock",
							 "Coordinate single flight across the servers sharing one Redis with a lock key.",
							 "Costs a round trip to Redis more per miss, two for the filler.",
							 &cache_ext_fill_lock,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}
