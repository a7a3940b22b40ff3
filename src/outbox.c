/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  The shared-memory outbox of undelivered invalidations and the
 *	  server-wide invalidation state (DESIGN.md §2 C3).
 *
 * When the bumps of a commit cannot be delivered, the keys go to the
 * outbox; while it is not empty this server serves no hits, and
 * cached_query() retries delivering it.  When the outbox overflows, after
 * a crash or an unclean shutdown, after a promotion and when the Redis
 * server's run_id changes, the server generation, which every entry
 * depends on, must be bumped before hits are served again.  A clean
 * shutdown leaves a state file saying that nothing was lost.
 *
 * Locking: everything in InvalShared is guarded by one LWLock (tranche
 * "cache_ext"), except "blocked" and "epoch", atomics written under the
 * lock and read without it.  The lock is never held across a Redis round
 * trip: one backend at a time sends the outbox ("delivering").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "invalidate.h"
#include "keys.h"
#include "outbox.h"
#include "redis/redis.h"

/* written at a clean shutdown; its absence at startup means bumps may be lost */
#define STATE_FILE "cache_ext.state"

#define OUTBOX_SIZE 512

/* ---- shared memory ---- */

typedef struct InvalShared
{
	LWLock	   *lock;
	/* outbox items + (requested > delivered): hits are served only at 0 */
	pg_atomic_uint32 blocked;
	/* incremented at every change of the above: see InvalEpoch() */
	pg_atomic_uint64 epoch;
	uint64		requested;		/* server-generation bumps asked for */
	uint64		delivered;		/* ... and the last one delivered */
	uint64		version;		/* incremented when the outbox is emptied */
	bool		delivering;		/* a backend is sending the outbox */
	bool		in_recovery;	/* started as a standby or in recovery, not yet seen promoted */
	int			nitems;
	char		run_id[64];		/* of the Redis server, "" until known */
	char		items[OUTBOX_SIZE][INVAL_KEY_LEN];
} InvalShared;

static InvalShared *shared = NULL;

/* ================================================================
 * Shared memory, startup and shutdown
 * ================================================================
 */

void
InvalShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(InvalShared)));
	RequestNamedLWLockTranche("cache_ext", 1);
}

static void
update_blocked(void)
{
	pg_atomic_write_u32(&shared->blocked,
						shared->nitems + (shared->requested > shared->delivered ? 1 : 0));
	pg_atomic_fetch_add_u64(&shared->epoch, 1);
}

/* Invalidate everything this server stored, before hits are served again. */
void
OutboxRequestServerBump(void)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->requested++;
	update_blocked();
	LWLockRelease(shared->lock);
}

/*
 * Postmaster exit: leave a note that nothing was lost, so the next start
 * need not bump the server generation.  Not on a crash (code != 0), nor
 * with invalidations undelivered.
 */
static void
write_state_file(int code, Datum arg)
{
	FILE	   *f;

	if (code != 0 || shared == NULL || shared->nitems != 0 ||
		shared->requested != shared->delivered)
		return;
	f = fopen(STATE_FILE, "w");
	if (f == NULL)
		return;
	fprintf(f, "%s\n", shared->run_id);
	fclose(f);
}

/*
 * Whether the last shutdown was clean: the control file says so and the
 * state file exists (it is removed here, and by any backend that runs
 * cache_ext without shared memory).  Fills run_id from the state file.
 */
static bool
last_shutdown_clean(char *run_id, size_t len)
{
	bool		crc_ok;
	ControlFileData *cf;
	FILE	   *f;
	bool		clean;

	run_id[0] = '\0';
	cf = get_controlfile(DataDir, &crc_ok);
	clean = crc_ok && (cf->state == DB_SHUTDOWNED ||
					   cf->state == DB_SHUTDOWNED_IN_RECOVERY);
	pfree(cf);
	f = fopen(STATE_FILE, "r");
	if (f == NULL)
		return false;
	if (fgets(run_id, len, f) == NULL)
		run_id[0] = '\0';
	run_id[strcspn(run_id, "\r\n")] = '\0';
	fclose(f);
	unlink(STATE_FILE);
	return clean;
}

void
InvalShmemInit(void)
{
	bool		found;

	shared = ShmemInitStruct("cache_ext invalidation", sizeof(InvalShared),
							 &found);
	if (!found)
	{
		char		run_id[64];
		bool		standby = access(STANDBY_SIGNAL_FILE, F_OK) == 0;

		memset(shared, 0, sizeof(InvalShared));
		shared->lock = &(GetNamedLWLockTranche("cache_ext"))->lock;
		pg_atomic_init_u32(&shared->blocked, 0);
		pg_atomic_init_u64(&shared->epoch, 0);

		if (last_shutdown_clean(run_id, sizeof(run_id)))
			strlcpy(shared->run_id, run_id, sizeof(shared->run_id));
		else if (!standby)
		{
			/* bumps may have been lost: invalidate everything first */
			shared->requested = 1;
			ereport(LOG,
					(errmsg("cache_ext will invalidate every cached result before serving hits"),
					 errdetail("The server did not shut down cleanly, so invalidations may have been lost.")));
		}

		/*
		 * A standby writes nothing, so it has no invalidations to lose; but
		 * once promoted (as after targeted recovery) it takes over from a
		 * primary whose undelivered invalidations died with it, or goes
		 * back in time: bump the server generation then.
		 */
		shared->in_recovery = standby || access(RECOVERY_SIGNAL_FILE, F_OK) == 0;
		update_blocked();
		if (!IsUnderPostmaster)
			on_shmem_exit(write_state_file, (Datum) 0);
	}
}

bool
InvalShmemReady(void)
{
	return shared != NULL;
}

int64
InvalPendingCount(void)
{
	return shared ? (int64) pg_atomic_read_u32(&shared->blocked) : 0;
}

/* A new Redis connection: has the server restarted since we last saw it? */
static void
on_redis_connect(const char *run_id)
{
	if (shared == NULL || run_id == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->run_id[0] != '\0' && strcmp(shared->run_id, run_id) != 0)
	{
		shared->requested++;
		update_blocked();
		ereport(LOG,
				(errmsg("cache_ext will invalidate every cached result before serving hits"),
				 errdetail("The Redis server restarted (its run_id changed), so it may have lost invalidations.")));
	}
	strlcpy(shared->run_id, run_id, sizeof(shared->run_id));
	LWLockRelease(shared->lock);
}

/* Keys whose bump could not be delivered: keep them until they are. */
void
OutboxAdd(char **keys, int n)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->nitems + n > OUTBOX_SIZE)
	{
		/* too many to keep: bump the server generation instead */
		shared->nitems = 0;
		shared->version++;
		shared->requested++;
		CacheStatsAdd(CS_OUTBOX_OVERFLOWS, 1);
	}
	else
	{
		for (int i = 0; i < n; i++)
			strlcpy(shared->items[shared->nitems++], keys[i], INVAL_KEY_LEN);
	}
	update_blocked();
	LWLockRelease(shared->lock);
	CacheStatsAdd(CS_BUMPS_DEFERRED, n);
}

/* A value never used before for a generation: 128 random bits, in hex. */
void
InvalFreshValue(char *buf)
{
	uint8		rnd[16];

	if (!pg_strong_random(rnd, sizeof(rnd)))
	{
		/* not expected; time and PID still make a value never used before */
		uint64		t = (uint64) GetCurrentTimestamp();
		uint64		p = (uint64) MyProcPid;

		memcpy(rnd, &t, 8);
		memcpy(rnd + 8, &p, 8);
	}
	for (int i = 0; i < 16; i++)
		snprintf(buf + 2 * i, 3, "%02x", rnd[i]);
}

/* MSET every key to one fresh value; true when Redis took it. */
bool
OutboxSendBumps(char **keys, int n, int timeout_ms)
{
	RedisCommand cmd;
	redisReply *reply = NULL;
	char		value[33];
	bool		ok;
	const char *why;

	if (n == 0)
		return true;
	if (!RedisUsable(&why))
		return false;
	InvalFreshValue(value);
	RedisCommandInit(&cmd, "MSET");
	for (int i = 0; i < n; i++)
	{
		RedisCommandArgStr(&cmd, keys[i]);
		RedisCommandArg(&cmd, value, 32);
	}
	if (!RedisExecTimeout(1, &cmd, &reply, 4096, timeout_ms))
		return false;
	ok = reply->type == REDIS_REPLY_STATUS;
	if (!ok && reply->type == REDIS_REPLY_ERROR)
		RedisReportError(reply->str, reply->len);
	RedisFreeReplies(1, &reply);
	if (ok)
		CacheStatsAdd(CS_BUMPS_SENT, n);
	return ok;
}

/*
 * Try to deliver the outbox (or the server bump).  Only one backend at a
 * time sends; the others return at once.
 */
static void
deliver_outbox(void)
{
	uint64		requested;
	uint64		version;
	int			n;
	char	  **volatile keys = NULL;
	volatile bool ok = false;
	int			nsend;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->delivering || pg_atomic_read_u32(&shared->blocked) == 0)
	{
		LWLockRelease(shared->lock);
		return;
	}
	shared->delivering = true;
	requested = shared->requested;
	version = shared->version;
	n = shared->nitems;
	if (requested > shared->delivered)
	{
		/* the server generation covers every item */
		keys = palloc(sizeof(char *));
		keys[0] = NULL;
		nsend = 1;
	}
	else
	{
		keys = palloc(sizeof(char *) * Max(n, 1));
		for (int i = 0; i < n; i++)
			keys[i] = pstrdup(shared->items[i]);
		nsend = n;
	}
	LWLockRelease(shared->lock);

	PG_TRY();
	{
		if (requested > 0 && keys[0] == NULL)
			keys[0] = KeyServerGenName();
		ok = OutboxSendBumps(keys, nsend, cache_ext_command_timeout);
	}
	PG_FINALLY();
	{
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		shared->delivering = false;
		if (ok)
		{
			if (requested > shared->delivered)
				shared->delivered = requested;
			if (version == shared->version)
			{
				/* items added meanwhile stay */
				memmove(shared->items[0], shared->items[n],
						(size_t) (shared->nitems - n) * INVAL_KEY_LEN);
				shared->nitems -= n;
			}
			update_blocked();
		}
		LWLockRelease(shared->lock);
	}
	PG_END_TRY();
	if (ok && pg_atomic_read_u32(&shared->blocked) == 0)
		ereport(LOG,
				(errmsg("cache_ext delivered the invalidations it was holding; hits are served again")));
}

int
InvalOutboxDepth(void)
{
	return shared ? shared->nitems : 0;
}

uint64
InvalEpoch(void)
{
	return shared ? pg_atomic_read_u64(&shared->epoch) : 0;
}

bool
InvalHitsBlockedSince(uint64 epoch)
{
	if (shared == NULL)
		return false;
	return pg_atomic_read_u32(&shared->blocked) != 0 ||
		pg_atomic_read_u64(&shared->epoch) != epoch;
}

/* The first call after a promotion asks for the server bump. */
static void
check_promotion(void)
{
	if (RecoveryInProgress())
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->in_recovery)
	{
		shared->in_recovery = false;
		shared->requested++;
		update_blocked();
		ereport(LOG,
				(errmsg("cache_ext will invalidate every cached result before serving hits"),
				 errdetail("This server was promoted: the former primary may not have delivered all its invalidations.")));
	}
	LWLockRelease(shared->lock);
}

bool
InvalHitsBlocked(bool try_deliver)
{
	if (shared != NULL && shared->in_recovery)
		check_promotion();
	if (shared == NULL || pg_atomic_read_u32(&shared->blocked) == 0)
		return false;
	if (try_deliver)
	{
		deliver_outbox();
		/* connecting to send them may have found that Redis restarted */
		if (pg_atomic_read_u32(&shared->blocked) != 0)
			deliver_outbox();
	}
	return pg_atomic_read_u32(&shared->blocked) != 0;
}

/*
 * From InvalInit: learn of Redis restarts; and, in a backend where cache_ext
 * is not preloaded (no ProcessUtility hook, so DDL goes unseen), remove the
 * state file so that the next preloaded start does not trust that nothing
 * was missed.
 */
void
OutboxInit(void)
{
	redis_connect_hook = on_redis_connect;
	if (!process_shared_preload_libraries_in_progress)
		(void) unlink(STATE_FILE);
}
