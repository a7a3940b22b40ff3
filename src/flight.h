/*-------------------------------------------------------------------------
 *
 * flight.h
 *	  Single flight (stampede protection): concurrent misses of one entry
 *	  compute it once, the others wait for it (docs/single-flight.md).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_FLIGHT_H
#define CACHE_EXT_FLIGHT_H

#include "postgres.h"

/* a fill lock's token: a hash of this server's system identifier (8 bytes), then 16 random bytes, in hex */
#define FLIGHT_TOKEN_LEN 48

/* settings (flight.c) */
extern int cache_ext_fill_wait; /* ms; 0: no single flight */
extern bool cache_ext_fill_lock;

/* What FlightJoin tells a call that missed. */
typedef enum FlightRole
{
	FLIGHT_ALONE,  /* run the query, with no single flight */
	FLIGHT_FILLER, /* run and store it: this call is the filler */
	FLIGHT_RETRY   /* look the entry up again, then join again */
} FlightRole;

/* One call's part in single flight; FlightCallInit before use. */
typedef struct FlightCall
{
	int slot;			  /* the slot this call fills, or -1 */
	uint64 fill_id;		  /* of that slot when taken */
	uint64 seq_before;	  /* fills done, read before the last lookup */
	TimestampTz deadline; /* set by the first join */
	bool joined;
	bool waited;					  /* it waited for another's fill */
	bool remote_seen;				  /* another server held the fill lock */
	bool rechecked;					  /* looked up again once the lock was taken */
	bool alone;						  /* the fill it waited for could not store */
	bool saw_abort;					  /* a fill it waited for failed */
	bool lock_held;					  /* it holds the fill lock */
	bool steal_tried;				  /* it looked whether a busy lock is its server's */
	bool ended;						  /* FlightEnd was called */
	char *lock_key;					  /* the fill lock's key name */
	char token[FLIGHT_TOKEN_LEN + 1]; /* server (16 hex) + random (32 hex) */
	double wait_us;
} FlightCall;

extern void FlightDefineGucs(void);
extern void FlightShmemRequest(void);
extern void FlightShmemInit(void); /* with AddinShmemInitLock held */

extern void FlightCallInit(FlightCall *f);
extern void FlightBeforeLookup(FlightCall *f);
extern FlightRole FlightJoin(FlightCall *f, const char *rkey);
extern void FlightEnd(FlightCall *f, bool hit, bool stored);
extern bool FlightFilling(const char *rkey);

/* cache_stats' columns (stats.c) */
typedef struct FlightCounts
{
	int64 waits;
	int64 wait_hits;
	double wait_ms;
} FlightCounts;
extern void FlightGetCounts(FlightCounts *c);
extern void FlightResetCounts(void);

#endif /* CACHE_EXT_FLIGHT_H */
