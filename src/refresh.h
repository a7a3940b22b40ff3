/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Refresh-ahead (docs/warming.md, "Refresh-ahead"): the registry of
 *	  entries that asked to be recomputed before their TTL ends
 *	  (refresh.c) and the background worker that recomputes them
 *	  (refresh_worker.c).
 *
 * The registry is in shared memory: REFRESH_SLOTS fixed slots under one
 * LWLock (refresh_shared->lock), except each slot's hit count and the
 * counters, which are atomics.  A slot is written only under the lock held
 * exclusively; the worker copies a slot out under the lock and runs it
 * without the lock.
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

/* the most slots one role holds (review-refresh A) */
#define REFRESH_ROLE_SLOTS (REFRESH_SLOTS / 2)

typedef enum RefreshCounter
{
	RC_REGISTERED, /* entries put into the registry */
	RC_REFUSED,	   /* not registered: full, quota, too large, other db */
	RC_REFRESHED,  /* recomputed and stored by the worker */
	RC_DROPPED,	   /* jobs dropped: bypass, not stored, role or settings gone */
	RC_FAILED,	   /* jobs whose call raised an error (dropped too) */
	RC_EXPIRED,	   /* hot entries whose TTL ended before their turn */
	RC_NCOUNTERS
} RefreshCounter;

typedef struct RefreshSlot
{
	bool used;
	bool busy;					 /* the worker is refreshing it */
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

typedef struct RefreshShared
{
	LWLock *lock;
	Oid dboid;				/* the database served: the first to register
							 * into an empty registry with no worker */
	bool worker_registered; /* the dynamic worker was started, and has
							 * not exited yet */
	int worker_pid;			/* the running worker, 0 when none */
	TimestampTz started_at; /* when worker_registered was last set */
	pg_atomic_uint32 nused;
	pg_atomic_uint64 counters[RC_NCOUNTERS];
	RefreshSlot slots[REFRESH_SLOTS];
} RefreshShared;

extern RefreshShared *refresh_shared;
extern bool cache_ext_refresh_ahead;
extern double cache_ext_refresh_budget;
extern int cache_ext_refresh_max_per_pass;

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

/* refresh_worker.c */
extern bool RefreshDueSoon(RefreshSlot *s, TimestampTz now);
extern bool RefreshTakeForced(void);

#endif /* CACHE_EXT_REFRESH_H */
