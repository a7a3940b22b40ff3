/*-------------------------------------------------------------------------
 *
 * l1_gen.c
 *	  The local tier's generation counters: a fixed array of atomic
 *	  counters in shared memory, indexed by a hash of a generation key
 *	  name (the names keys.c makes and xactset.c touches), plus one
 *	  server-wide counter.
 *
 * An L1 entry records the values of the counters of its scopes, read
 * before its data was read; it is valid while all are unchanged.  Two
 * names that share a slot only make each other's entries invalid too
 * often, never too rarely.  Every path that bumps a generation in Redis
 * (xactset.c's commit, COMMIT PREPARED, the outbox's server bumps) bumps
 * the counters after the Redis bump was sent or kept in the outbox
 * (docs/invalidation.md, "The local tier", has the ordering argument).
 *
 * State (shared memory, no lock): counters[] and all are pg_atomic_uint64;
 * any backend may read or increment them at any time.  They only grow
 * (fetch_add), so a value read once never comes back.  They are allocated
 * only when cache_ext.local_cache_size > 0 and the library is preloaded;
 * a restart (clean or after a crash) starts them at zero with L1 empty.
 * gen (the pointer) is backend-local, set once at shared memory init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/shmem.h"

#include "l1.h"

/* 64k counters, 512 kB: collisions between hot scopes stay rare */
#define L1_NCOUNTERS 65536

typedef struct L1GenShared
{
	pg_atomic_uint64 all;
	pg_atomic_uint64 counters[L1_NCOUNTERS];
} L1GenShared;

static L1GenShared *gen = NULL;

/*
 * cache_ext.testing_skip_local_bump (for tests only, superuser): this
 * session's L1GenBump does nothing, so the entries it should invalidate
 * stay valid in L1: the consistency checker's self-test uses it to prove
 * that it catches a stale HIT (local).  Backend-local, a GUC.
 */
bool cache_ext_testing_skip_local_bump = false;

Size
L1GenShmemSize(void)
{
	return sizeof(L1GenShared);
}

void
L1GenShmemInit(void)
{
	bool found;

	gen = ShmemInitStruct("cache_ext l1 generations", sizeof(L1GenShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&gen->all, 1);
		for (int i = 0; i < L1_NCOUNTERS; i++)
			pg_atomic_init_u64(&gen->counters[i], 1);
	}
}

bool
L1GenReady(void)
{
	return gen != NULL;
}

static uint32
slot_of(const char *key)
{
	return hash_bytes((const unsigned char *) key, (int) strlen(key)) % L1_NCOUNTERS;
}

void
L1GenSlots(char **keys, int n, L1Snapshot *snap)
{
	snap->n = n;
	snap->slots = palloc(sizeof(uint32) * Max(n, 1));
	snap->vals = palloc0(sizeof(uint64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		snap->slots[i] = slot_of(keys[i]);
	snap->all = 0;
}

/*
 * Read the counters of snap's slots.  The barrier orders these reads
 * after everything this backend did before (its own commits' bumps), and
 * before the reads of data that follow.
 */
void
L1GenRead(L1Snapshot *snap)
{
	Assert(gen != NULL);
	pg_memory_barrier();
	snap->all = pg_atomic_read_u64(&gen->all);
	for (int i = 0; i < snap->n; i++)
		snap->vals[i] = pg_atomic_read_u64(&gen->counters[snap->slots[i]]);
	pg_memory_barrier();
}

bool
L1GenCurrent(const L1Snapshot *snap)
{
	if (gen == NULL)
		return false;
	pg_memory_barrier();
	if (pg_atomic_read_u64(&gen->all) != snap->all)
		return false;
	for (int i = 0; i < snap->n; i++)
		if (pg_atomic_read_u64(&gen->counters[snap->slots[i]]) != snap->vals[i])
			return false;
	return true;
}

void
L1GenBump(char **keys, int n)
{
	if (gen == NULL || cache_ext_testing_skip_local_bump)
		return;
	for (int i = 0; i < n; i++)
		pg_atomic_fetch_add_u64(&gen->counters[slot_of(keys[i])], 1);
}

void
L1GenBumpAll(void)
{
	if (gen == NULL)
		return;
	pg_atomic_fetch_add_u64(&gen->all, 1);
}
