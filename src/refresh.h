/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Refresh-ahead (docs/warming.md, "Refresh-ahead"): the registry of
 *	  entries that asked to be recomputed before their TTL ends
 *	  (refresh.c), the background workers that recompute them, one per
 *	  database (refresh_worker.c), and which databases get a worker
 *	  (refresh_sched.c).
 *
 * The registry is in shared memory: REFRESH_SLOTS fixed slots under one
 * LWLock (refresh_shared->lock), except each slot's hit count and the
 * counters, which are atomics.  A slot is written only under the lock held
 * exclusively; a worker copies a slot of its database out under the lock
 * and runs it without the lock.  The table of workers (workers[]) is
 * written under the same lock held exclusively.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_REFRESH_H
#define CACHE_EXT_REFRESH_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "keys.h"

#define REFRESH_SLOTS		 64
#define REFRESH_PAYLOAD		 8192  /* query, settings, parameters, options */
#define REFRESH_NAP_MS		 500   /* the worker's pass interval */
#define REFRESH_IDLE_EXIT_MS 2000  /* the worker exits when idle this long */
#define REFRESH_MIN_LEAD_MS	 2000  /* refresh at least this long before the end */
#define REFRESH_START_MS	 10000 /* not running this long after its start: it failed */
#define REFRESH_RETRY_MS	 1000  /* a database's worker starts at most this often */
#define REFRESH_TURN_MS		 2000  /* a worker's turn while another database waits */

/* the most slots one role holds (review-refresh A) */
#define REFRESH_ROLE_SLOTS (REFRESH_SLOTS / 2)
/* the most slots one database holds, so that the others keep a quarter */
#define REFRESH_DB_SLOTS (REFRESH_SLOTS * 3 / 4)

typedef enum RefreshCounter
{
	RC_REGISTERED, /* entries put into the registry */
	RC_REFUSED,	   /* not registered: full, role or database quota, too large */
	RC_REFRESHED,  /* recomputed and stored by the worker */
	RC_DROPPED,	   /* jobs dropped: bypass, not stored, role or settings gone */
	RC_FAILED,	   /* jobs whose call raised an error (dropped too) */
	RC_EXPIRED,	   /* hot entries whose TTL ended before their turn */
	RC_NCOUNTERS
} RefreshCounter;

typedef struct RefreshSlot
{
	bool used;
	bool busy;					 /* its database's worker is refreshing it */
	Oid dboid;					 /* the database of the call */
	uint8 hash[CE_HASH_LEN];	 /* the entry key */
	uint8 settings[CE_HASH_LEN]; /* settings_key() of the call */
	Oid roleid;					 /* the call's current user */
	Oid sessionid;				 /* its session user, who took roleid */
	uint64 queryid;
	int64 ttl_ms;
	TimestampTz expires_at;
	pg_atomic_uint32 hits; /* hits since it was last stored */
	int len;
	char payload[REFRESH_PAYLOAD];
} RefreshSlot;

/*
 * A database's worker (refresh_sched.c).  An entry is free when dboid is
 * invalid, and reused when its start failed more than REFRESH_RETRY_MS
 * ago, or its worker exited and its held_until has passed.  registered
 * is set from the start until the worker exits (or its start failed);
 * pid only while it runs, and implies registered.  At most
 * one entry per database.  An entry is taken only by a database with a
 * hot slot, so REFRESH_SLOTS of them are enough; when none is free, the
 * start waits as for the cap.
 */
typedef struct RefreshWorker
{
	Oid dboid;
	bool registered;		/* started, and has not exited yet */
	int pid;				/* the running worker, 0 when none */
	TimestampTz started_at; /* its last start; 0 once one connected */
	TimestampTz held_until; /* no start before: its last worker's nap */
} RefreshWorker;

typedef struct RefreshShared
{
	LWLock *lock;
	pg_atomic_uint32 nused;
	pg_atomic_uint64 counters[RC_NCOUNTERS];
	RefreshWorker workers[REFRESH_SLOTS];
	RefreshSlot slots[REFRESH_SLOTS];
} RefreshShared;

extern RefreshShared *refresh_shared;
extern bool cache_ext_refresh_ahead;
extern double cache_ext_refresh_budget;
extern int cache_ext_refresh_max_per_pass;
extern int cache_ext_refresh_max_workers;

struct CallParams;
struct CallOptions;

/* refresh.c */
extern void RefreshDefineGucs(void);
extern void RefreshShmemRequest(void);
extern void RefreshShmemInit(void);
extern void RefreshNoteCall(const uint8 *hash, const char *query,
							const struct CallParams *params,
							const struct CallOptions *opts,
							const uint8 *settings, uint64 queryid,
							bool hit, bool stored);
extern void RefreshCount(RefreshCounter c);
extern void RefreshFree(const uint8 *hash);
extern bool RefreshLastStored(uint8 *hash);
extern void RefreshReclaimDropped(void);
extern void RefreshFreeDatabase(Oid dboid);
extern void RefreshDatabaseCreated(Oid dboid);

/* refresh_worker.c */
extern bool RefreshDueSoon(RefreshSlot *s, TimestampTz now);
extern bool RefreshTakeForced(void);

/* refresh_sched.c */
extern RefreshWorker *RefreshWorkerOf(Oid dboid);
extern int RefreshDatabases(Oid *dbs);
extern bool RefreshMayStart(Oid dboid, TimestampTz now);
extern void RefreshStartWorker(Oid dboid);
extern bool RefreshClaimWorker(Oid dboid);
extern void RefreshReleaseWorker(Oid dboid, bool connected);
extern bool RefreshSchedule(TimestampTz since, TimestampTz held_until,
							bool leaving);

#endif /* CACHE_EXT_REFRESH_H */
