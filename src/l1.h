/*-------------------------------------------------------------------------
 *
 * l1.h
 *	  The local tier (L1): results kept in this server's shared memory in
 *	  front of Redis, and the generation counters that decide, with no
 *	  network, whether one is still valid (docs/invalidation.md, "The local
 *	  tier").
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_L1_H
#define CACHE_EXT_L1_H

#include "postgres.h"

/* cache_ext.local_cache_size, in kB; 0 = no local tier */
extern int cache_ext_local_cache_size;

/* cache_ext.testing_skip_local_bump: tests only (l1_gen.c) */
extern bool cache_ext_testing_skip_local_bump;

/* ---- l1_gen.c: the generation counters ---- */

/*
 * The counters a call depends on, read at one moment: one per generation
 * key name of its scopes (slot = hash of the name), and the server-wide
 * counter every entry depends on.
 */
typedef struct L1Snapshot
{
	int n;
	uint32 *slots; /* palloc'd, n of them */
	uint64 *vals;  /* palloc'd, n of them */
	uint64 all;	   /* the server-wide counter */
} L1Snapshot;

extern Size L1GenShmemSize(void);
extern void L1GenShmemInit(void); /* with AddinShmemInitLock held */
extern bool L1GenReady(void);

/* The slots of keys, then their current values (with a barrier first). */
extern void L1GenSlots(char **keys, int n, L1Snapshot *snap);
extern void L1GenRead(L1Snapshot *snap);

/* Whether every counter of snap still holds the value snap read. */
extern bool L1GenCurrent(const L1Snapshot *snap);

/*
 * Bump the counters of keys (after their Redis bump was sent or kept), or
 * the server-wide one (everything stored in L1 becomes invalid).  Never
 * raise; no-ops when L1 has no shared memory.  L1GenBump is also a no-op
 * in a session with cache_ext.testing_skip_local_bump on (tests only).
 */
extern void L1GenBump(char **keys, int n);
extern void L1GenBumpAll(void);

/* ---- l1.c: the entries ---- */

typedef struct L1Counts
{
	int64 hits;
	int64 stores;
	int64 evictions;
	int64 rejected; /* refused by admission */
	int64 bytes;	/* in use, entries and their payload */
	int64 capacity; /* bytes of entry memory */
	int64 entries;
} L1Counts;

extern void L1DefineGucs(void);
extern void L1ShmemRequest(void);
extern void L1ShmemInit(void); /* with AddinShmemInitLock held */

/*
 * Whether L1 may be used by this backend now; when not, *why (if not NULL)
 * says why, or is NULL when L1 is simply off (cache_ext.local_cache_size =
 * 0 or not preloaded).
 */
extern bool L1Usable(const char **why);

/*
 * The entry of (hash, this database) if it is valid for the scopes of cur
 * (the same slots, every counter unchanged since the entry was computed,
 * not expired): a palloc'd copy of its bytes with one spare byte after
 * *len, else NULL.  Counts the hit against the entry's value.
 */
extern char *L1Lookup(const uint8 *hash, const L1Snapshot *cur, size_t *len);

/* Whether (hash, this database) has an entry, valid or not (explain). */
extern bool L1Contains(const uint8 *hash, const L1Snapshot *cur, bool *valid);

/*
 * Insert an entry computed under the counters of snap (read before the
 * data was), living ttl_ms, whose recomputation costs about cost_us.  May
 * evict, or refuse (admission, size); never raises but out of memory.
 */
extern void L1Insert(const uint8 *hash, const char *data, size_t len,
					 const L1Snapshot *snap, int64 ttl_ms, double cost_us);

/*
 * False when an entry of at least len bytes under nscopes scopes would be
 * refused for its size (or L1 is not usable): the caller need not build it.
 */
extern bool L1MayTake(size_t len, int nscopes);
extern size_t L1EntryLimit(int nscopes);
extern void L1Delete(const uint8 *hash);
extern void L1DeleteDatabase(void); /* cache_purge(): this database's */
extern void L1GetCounts(L1Counts *c);
extern void L1CountHit(void);
extern void L1ResetCounts(void); /* hits, stores, evictions, rejected */

/*
 * For cache_health(): "on", "off", or why it is off; capacity, bytes and
 * entries in use are filled when it is on.
 */
extern const char *L1State(L1Counts *c);

#endif /* CACHE_EXT_L1_H */
