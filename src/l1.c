/*-------------------------------------------------------------------------
 *
 * l1.c
 *	  The local tier (L1): entries kept in shared memory in front of Redis,
 *	  keyed by the entry key hash and the database, holding the result in
 *	  the local tier's form (l1_rows.c: its rows) and the L1 generation
 *	  counters (l1_gen.c) read before their data was.
 *
 * Memory is fixed at server start (cache_ext.local_cache_size): a table of
 * entry headers with hash buckets, and an arena of fixed-size chunks; an
 * entry's payload (its counters, then its bytes) is a chain of chunks.
 * Free headers and free chunks are on free lists.  Nothing is palloc'd in
 * shared memory.
 *
 * Eviction keeps what saves the most: an entry's value is (hits + 1) x
 * the cost of producing it again (the time of the miss that stored it; for
 * a copy of a Redis hit, the query's mean miss time) per byte, hits being
 * the times it was served; to make room, a few random entries are sampled
 * (with few headers in use, the used ones after a random one) and the
 * least valuable one goes (invalid and expired ones first), and the
 * survivors' hits halve (aging).  Admission: while there is free room
 * every entry is taken; once taking one means evicting, an entry is taken
 * only the second time its key is offered (a small doorkeeper array of key
 * fingerprints), so one-off results cannot flush hot ones.
 *
 * State, in shared memory (l1), all under l1->lock unless said otherwise:
 *	- buckets[], entries[] (every field but hits), chunk_next[], the free
 *	  lists, nused, rng and doorkeeper[]: read under the lock in shared
 *	  mode, changed only in exclusive mode.
 *	- the chunks' bytes: written in exclusive mode before the entry is
 *	  linked into its bucket; copied out in shared mode.
 *	- entries[].hits: pg_atomic_uint32, incremented in shared mode (a hit),
 *	  reset or halved in exclusive mode.
 *	- the counts (hits, stores, evictions, rejected, bytes): atomics, any
 *	  backend, no lock.
 * The lock is held only to find, copy (and check against the counters) or
 * link: never while decoding, never across anything but memcpy, atomic
 * reads and a palloc (an error there releases the LWLock in abort, as for
 * every LWLock).  No spinlock is used.
 * l1 (the pointer) is backend-local, set once at shared memory init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "keys.h"
#include "l1.h"

#define L1_CHUNK	  256  /* bytes of payload per chunk */
#define L1_DOORKEEPER 4096 /* fingerprints of keys offered once */
#define L1_SAMPLE	  8	   /* entries compared per eviction */

int cache_ext_local_cache_size = 0;

typedef struct L1Entry
{
	uint8 hash[CE_HASH_LEN];
	Oid db;
	bool used;
	int32 next;	 /* next in the bucket, or in the free list */
	int32 first; /* first chunk of the payload */
	uint32 nchunks;
	uint32 len;		/* payload bytes: scopes, then data */
	uint32 nscopes; /* slots (uint32) then values (uint64) */
	uint64 all;		/* the server-wide counter when computed */
	TimestampTz expires;
	double cost_us; /* what producing it again costs */
	pg_atomic_uint32 hits;
} L1Entry;

typedef struct L1Shared
{
	LWLock *lock;
	int nbuckets;
	int nentries;
	int nchunks;
	int32 free_entry;
	int32 free_chunk;
	int nfree_chunks;
	int nused;
	uint64 rng;
	pg_atomic_uint64 hits;
	pg_atomic_uint64 stores;
	pg_atomic_uint64 evictions;
	pg_atomic_uint64 rejected;
	pg_atomic_uint64 bytes;
	uint32 doorkeeper[L1_DOORKEEPER];
	/* then buckets, entries, chunk_next, chunks (see l1_layout) */
} L1Shared;

static L1Shared *l1 = NULL;
static int32 *buckets;
static L1Entry *entries;
static int32 *chunk_next;
static char *chunks;

/* How many chunks (and headers: half as many) the setting pays for. */
static int
l1_nchunks(void)
{
	Size budget = (Size) cache_ext_local_cache_size * 1024;
	Size per_chunk = L1_CHUNK + sizeof(int32) + (sizeof(L1Entry) + sizeof(int32)) / 2;

	return (int) Max(budget / per_chunk, 16);
}

static Size
l1_size(int nchunks)
{
	int nentries = nchunks / 2;
	Size s = MAXALIGN(sizeof(L1Shared));

	s = add_size(s, MAXALIGN(mul_size(nentries, sizeof(int32))));
	s = add_size(s, MAXALIGN(mul_size(nentries, sizeof(L1Entry))));
	s = add_size(s, MAXALIGN(mul_size(nchunks, sizeof(int32))));
	s = add_size(s, mul_size(nchunks, L1_CHUNK));
	return s;
}

/* Point the backend-local array pointers into the shared block. */
static void
l1_layout(void)
{
	char *p = (char *) l1 + MAXALIGN(sizeof(L1Shared));

	buckets = (int32 *) p;
	p += MAXALIGN(sizeof(int32) * l1->nbuckets);
	entries = (L1Entry *) p;
	p += MAXALIGN(sizeof(L1Entry) * l1->nentries);
	chunk_next = (int32 *) p;
	p += MAXALIGN(sizeof(int32) * l1->nchunks);
	chunks = p;
}

void
L1DefineGucs(void)
{
	DefineCustomIntVariable("cache_ext.local_cache_size",
							"Shared memory for the local tier of results in front of Redis; 0 turns it off.",
							"Takes effect at server start; needs cache_ext in shared_preload_libraries. Off on a hot standby.",
							&cache_ext_local_cache_size,
							0, 0, 16 * 1024 * 1024,
							CE_PGC_POSTMASTER, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("cache_ext.testing_skip_local_bump",
							 "For tests only: this session's commits do not bump the local tier's counters.",
							 "Its writes then leave stale entries in the local tier; the consistency checker's self-test uses it. Never set it otherwise.",
							 &cache_ext_testing_skip_local_bump,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
}

void
L1ShmemRequest(void)
{
	if (cache_ext_local_cache_size <= 0)
		return;
	RequestAddinShmemSpace(add_size(L1GenShmemSize(), l1_size(l1_nchunks())));
	RequestNamedLWLockTranche("cache_ext l1", 1);
}

void
L1ShmemInit(void)
{
	bool found;
	int nchunks;

	if (cache_ext_local_cache_size <= 0)
		return;
	nchunks = l1_nchunks();
	L1GenShmemInit();
	l1 = ShmemInitStruct("cache_ext l1", l1_size(nchunks), &found);
	if (found)
	{
		l1_layout();
		return;
	}
	l1->lock = &(GetNamedLWLockTranche("cache_ext l1"))->lock;
	l1->nchunks = nchunks;
	l1->nentries = nchunks / 2;
	l1->nbuckets = l1->nentries;
	l1->nused = 0;
	l1->rng = 0x9E3779B97F4A7C15ULL;
	pg_atomic_init_u64(&l1->hits, 0);
	pg_atomic_init_u64(&l1->stores, 0);
	pg_atomic_init_u64(&l1->evictions, 0);
	pg_atomic_init_u64(&l1->rejected, 0);
	pg_atomic_init_u64(&l1->bytes, 0);
	memset(l1->doorkeeper, 0, sizeof(l1->doorkeeper));
	l1_layout();
	for (int i = 0; i < l1->nbuckets; i++)
		buckets[i] = -1;
	for (int i = 0; i < l1->nentries; i++)
	{
		entries[i].used = false;
		entries[i].next = i + 1 < l1->nentries ? i + 1 : -1;
		pg_atomic_init_u32(&entries[i].hits, 0);
	}
	l1->free_entry = 0;
	for (int i = 0; i < nchunks; i++)
		chunk_next[i] = i + 1 < nchunks ? i + 1 : -1;
	l1->free_chunk = 0;
	l1->nfree_chunks = nchunks;
}

bool
L1Usable(const char **why)
{
	if (why)
		*why = NULL;
	if (l1 == NULL || !L1GenReady())
		return false;
	if (RecoveryInProgress())
	{
		/* invalidations reach a standby by WAL replay, not by our counters */
		if (why)
			*why = "off on a hot standby: its writes arrive by WAL replay, which does not bump the local counters";
		return false;
	}
	return true;
}

static uint32
bucket_of(const uint8 *hash, Oid db)
{
	uint32 h;

	memcpy(&h, hash, sizeof(h));
	return (h ^ (uint32) db) % (uint32) l1->nbuckets;
}

/* The entry of (hash, db), or -1; the lock held in either mode. */
static int32
find_entry(const uint8 *hash, Oid db)
{
	for (int32 i = buckets[bucket_of(hash, db)]; i >= 0; i = entries[i].next)
		if (entries[i].db == db && memcmp(entries[i].hash, hash, CE_HASH_LEN) == 0)
			return i;
	return -1;
}

/* Copy the payload of e into dst (its len bytes); the lock held. */
static void
copy_out(const L1Entry *e, char *dst)
{
	uint32 left = e->len;
	int32 c = e->first;

	while (left > 0)
	{
		uint32 n = Min(left, L1_CHUNK);

		Assert(c >= 0);
		memcpy(dst, chunks + (Size) c * L1_CHUNK, n);
		dst += n;
		left -= n;
		c = chunk_next[c];
	}
}

/* Unlink entry i and free its chunks; exclusive lock. */
static void
free_entry(int32 i)
{
	L1Entry *e = &entries[i];
	int32 *link = &buckets[bucket_of(e->hash, e->db)];
	int32 c = e->first;

	while (*link != i)
		link = &entries[*link].next;
	*link = e->next;
	while (c >= 0)
	{
		int32 next = chunk_next[c];

		chunk_next[c] = l1->free_chunk;
		l1->free_chunk = c;
		l1->nfree_chunks++;
		c = next;
	}
	pg_atomic_fetch_sub_u64(&l1->bytes, (uint64) e->nchunks * L1_CHUNK + sizeof(L1Entry));
	e->used = false;
	e->next = l1->free_entry;
	l1->free_entry = i;
	l1->nused--;
}

static uint64
next_random(void)
{
	/* xorshift64; exclusive lock */
	uint64 x = l1->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	l1->rng = x;
	return x;
}

/* The most scopes whose slots and values fit in an entry's first chunk. */
#define L1_SCOPES_IN_CHUNK (L1_CHUNK / (sizeof(uint32) + sizeof(uint64)))

/*
 * Whether a commit has bumped a counter e was computed under, when its
 * scopes are all in its first chunk (most entries: up to 21 scopes); an
 * entry with more is not checked here (false).  The lock held.
 */
static bool
scopes_moved(const L1Entry *e)
{
	uint32 slots[L1_SCOPES_IN_CHUNK];
	uint64 vals[L1_SCOPES_IN_CHUNK];
	const char *p;
	L1Snapshot stored;

	if (e->nscopes > L1_SCOPES_IN_CHUNK || e->first < 0)
		return false;
	p = chunks + (Size) e->first * L1_CHUNK;
	memcpy(slots, p, sizeof(uint32) * e->nscopes);
	memcpy(vals, p + sizeof(uint32) * e->nscopes, sizeof(uint64) * e->nscopes);
	stored.n = (int) e->nscopes;
	stored.slots = slots;
	stored.vals = vals;
	stored.all = e->all;
	return !L1GenCurrent(&stored);
}

/*
 * What keeping entry e saves per byte (see the banner): -1 when it is
 * useless already (expired, made under another server-wide counter, or
 * invalidated by a commit since).
 */
static double
entry_value(L1Entry *e, TimestampTz now, uint64 all)
{
	if (e->expires <= now || e->all != all || scopes_moved(e))
		return -1;
	return (pg_atomic_read_u32(&e->hits) + 1) * Max(e->cost_us, 1.0) /
		(double) (e->nchunks * L1_CHUNK);
}

/*
 * Evict the least valuable of a few sampled entries; exclusive lock.
 * False when no entry was found to evict.
 */
static bool
evict_one(TimestampTz now, uint64 all)
{
	int32 victim = -1;
	double worst = 0;
	int32 sampled[L1_SAMPLE];
	int nsampled = 0;

	if (l1->nused == 0)
		return false;
	for (int tries = 0; tries < 8 * L1_SAMPLE && nsampled < L1_SAMPLE; tries++)
	{
		int32 i = (int32) (next_random() % (uint64) l1->nentries);

		if (entries[i].used)
			sampled[nsampled++] = i;
	}
	if (nsampled == 0)
	{
		/*
		 * Few headers in use (large entries): the used ones that follow a
		 * random header, still compared by value, so that a hot entry is
		 * not evicted for sitting at a low index.
		 */
		int32 start = (int32) (next_random() % (uint64) l1->nentries);

		for (int32 k = 0; k < l1->nentries && nsampled < L1_SAMPLE; k++)
		{
			int32 i = (start + k) % l1->nentries;

			if (entries[i].used)
				sampled[nsampled++] = i;
		}
	}
	for (int k = 0; k < nsampled; k++)
	{
		double value = entry_value(&entries[sampled[k]], now, all);

		if (victim < 0 || value < worst)
		{
			victim = sampled[k];
			worst = value;
		}
	}
	if (victim < 0)
		return false;
	for (int k = 0; k < nsampled; k++)
		if (sampled[k] != victim)
			pg_atomic_write_u32(&entries[sampled[k]].hits,
								pg_atomic_read_u32(&entries[sampled[k]].hits) / 2);
	free_entry(victim);
	pg_atomic_fetch_add_u64(&l1->evictions, 1);
	return true;
}

/*
 * The doorkeeper, once inserting means evicting: true the second time
 * (in a row, per slot) a key is offered; exclusive lock.
 */
static bool
admit(const uint8 *hash)
{
	uint32 slot;
	uint32 fp;

	memcpy(&slot, hash + 4, sizeof(slot));
	memcpy(&fp, hash + 8, sizeof(fp));
	fp |= 1; /* never 0, the empty slot */
	slot %= L1_DOORKEEPER;
	if (l1->doorkeeper[slot] == fp)
	{
		l1->doorkeeper[slot] = 0;
		return true;
	}
	l1->doorkeeper[slot] = fp;
	return false;
}

/*
 * Build the payload of an entry: slots, values, data.  palloc'd, before
 * the lock is taken.
 */
static char *
build_payload(const L1Snapshot *snap, const char *data, size_t len,
			  uint32 *plen)
{
	Size scopes = (Size) snap->n * (sizeof(uint32) + sizeof(uint64));
	char *p = palloc(scopes + len);

	memcpy(p, snap->slots, sizeof(uint32) * snap->n);
	memcpy(p + sizeof(uint32) * snap->n, snap->vals, sizeof(uint64) * snap->n);
	memcpy(p + scopes, data, len);
	*plen = (uint32) (scopes + len);
	return p;
}

/* Whether an entry of len bytes under n scopes is small enough for L1. */
static bool
fits(size_t len, int n)
{
	/* one entry, its scopes included, may take an eighth of the memory */
	return (Size) n * (sizeof(uint32) + sizeof(uint64)) + len <=
		(Size) l1->nchunks * L1_CHUNK / 8;
}

bool
L1MayTake(size_t len, int nscopes)
{
	return L1Usable(NULL) && fits(len, nscopes);
}

/* The most data bytes one entry with nscopes scopes may take (0: none). */
size_t
L1EntryLimit(int nscopes)
{
	Size all = (Size) l1->nchunks * L1_CHUNK / 8;
	Size sc = (Size) nscopes * (sizeof(uint32) + sizeof(uint64));

	return L1Usable(NULL) && sc < all ? all - sc : 0;
}

void
L1Insert(const uint8 *hash, const char *data, size_t len,
		 const L1Snapshot *snap, int64 ttl_ms, double cost_us)
{
	uint32 plen;
	char *payload;
	uint32 need;
	TimestampTz now = GetCurrentTimestamp();
	int32 i;
	L1Entry *e;
	int32 *link;

	if (!L1Usable(NULL))
		return;
	if (!fits(len, snap->n))
	{
		pg_atomic_fetch_add_u64(&l1->rejected, 1);
		return;
	}
	payload = build_payload(snap, data, len, &plen);
	need = (plen + L1_CHUNK - 1) / L1_CHUNK;

	LWLockAcquire(l1->lock, LW_EXCLUSIVE);
	i = find_entry(hash, MyDatabaseId);
	/*
	 * A key with an entry already (replaced: if this one is older, it is
	 * only invalid) was admitted before: the doorkeeper is for new keys,
	 * and a refusal here would lose the old entry for nothing.
	 */
	if (i >= 0)
		free_entry(i);
	else if ((l1->nfree_chunks < (int) need || l1->free_entry < 0) && !admit(hash))
	{
		LWLockRelease(l1->lock);
		pg_atomic_fetch_add_u64(&l1->rejected, 1);
		pfree(payload);
		return;
	}
	while (l1->nfree_chunks < (int) need || l1->free_entry < 0)
	{
		if (!evict_one(now, snap->all))
		{
			LWLockRelease(l1->lock);
			pfree(payload);
			return;
		}
	}

	i = l1->free_entry;
	e = &entries[i];
	l1->free_entry = e->next;
	memcpy(e->hash, hash, CE_HASH_LEN);
	e->db = MyDatabaseId;
	e->len = plen;
	e->nchunks = need;
	e->nscopes = (uint32) snap->n;
	e->all = snap->all;
	e->expires = now + ttl_ms * 1000;
	e->cost_us = cost_us;
	pg_atomic_write_u32(&e->hits, 0);
	/* take need chunks and fill them */
	e->first = -1;
	link = &e->first;
	for (uint32 k = 0, off = 0; k < need; k++, off += L1_CHUNK)
	{
		int32 c = l1->free_chunk;

		l1->free_chunk = chunk_next[c];
		l1->nfree_chunks--;
		chunk_next[c] = -1;
		*link = c;
		link = &chunk_next[c];
		memcpy(chunks + (Size) c * L1_CHUNK, payload + off, Min(L1_CHUNK, plen - off));
	}
	e->used = true;
	e->next = buckets[bucket_of(hash, e->db)];
	buckets[bucket_of(hash, e->db)] = i;
	l1->nused++;
	pg_atomic_fetch_add_u64(&l1->bytes, (uint64) need * L1_CHUNK + sizeof(L1Entry));
	LWLockRelease(l1->lock);
	pg_atomic_fetch_add_u64(&l1->stores, 1);
	pfree(payload);
}

/*
 * Copy out the entry of (hash, this database) under the shared lock and
 * check it against cur.  Returns the data (within a palloc'd block, one
 * spare byte after it) or NULL; *present says whether there was an entry
 * (valid or not).  With count, a valid entry's hit is counted for its
 * value: only one that is served, never one found invalid or expired.
 */
static char *
fetch(const uint8 *hash, const L1Snapshot *cur, bool count, size_t *len,
	  bool *present)
{
	int32 i;
	char *buf;
	uint32 plen;
	uint32 nscopes;
	Size scopes;
	bool valid;
	L1Snapshot stored;

	*present = false;
	LWLockAcquire(l1->lock, LW_SHARED);
	i = find_entry(hash, MyDatabaseId);
	if (i < 0)
	{
		LWLockRelease(l1->lock);
		return NULL;
	}
	*present = true;
	plen = entries[i].len;
	nscopes = entries[i].nscopes;
	buf = palloc(plen + 1);
	copy_out(&entries[i], buf);

	/* the same scopes, every counter unchanged, not expired */
	scopes = (Size) nscopes * (sizeof(uint32) + sizeof(uint64));
	valid = nscopes == (uint32) cur->n && scopes <= plen &&
		memcmp(buf, cur->slots, sizeof(uint32) * nscopes) == 0 &&
		entries[i].expires > GetCurrentTimestamp();
	if (valid)
	{
		stored.n = (int) nscopes;
		stored.slots = (uint32 *) buf;
		stored.vals = palloc(sizeof(uint64) * Max(nscopes, 1));
		memcpy(stored.vals, buf + sizeof(uint32) * nscopes, sizeof(uint64) * nscopes);
		stored.all = entries[i].all;
		valid = L1GenCurrent(&stored);
	}
	if (valid && count)
		pg_atomic_fetch_add_u32(&entries[i].hits, 1);
	LWLockRelease(l1->lock);
	if (!valid)
		return NULL;
	*len = plen - scopes;
	return buf + scopes;
}

char *
L1Lookup(const uint8 *hash, const L1Snapshot *cur, size_t *len)
{
	bool present;

	if (!L1Usable(NULL))
		return NULL;
	return fetch(hash, cur, true, len, &present);
}

bool
L1Contains(const uint8 *hash, const L1Snapshot *cur, bool *valid)
{
	bool present;
	size_t len;

	*valid = false;
	if (!L1Usable(NULL))
		return false;
	*valid = fetch(hash, cur, false, &len, &present) != NULL;
	return present;
}

void
L1Delete(const uint8 *hash)
{
	int32 i;

	if (!L1Usable(NULL))
		return;
	LWLockAcquire(l1->lock, LW_EXCLUSIVE);
	i = find_entry(hash, MyDatabaseId);
	if (i >= 0)
		free_entry(i);
	LWLockRelease(l1->lock);
}

void
L1DeleteDatabase(void)
{
	if (!L1Usable(NULL))
		return;
	LWLockAcquire(l1->lock, LW_EXCLUSIVE);
	for (int32 i = 0; i < l1->nentries; i++)
		if (entries[i].used && entries[i].db == MyDatabaseId)
			free_entry(i);
	LWLockRelease(l1->lock);
}

void
L1CountHit(void)
{
	if (l1)
		pg_atomic_fetch_add_u64(&l1->hits, 1);
}

void
L1GetCounts(L1Counts *c)
{
	memset(c, 0, sizeof(*c));
	if (l1 == NULL)
		return;
	c->hits = (int64) pg_atomic_read_u64(&l1->hits);
	c->stores = (int64) pg_atomic_read_u64(&l1->stores);
	c->evictions = (int64) pg_atomic_read_u64(&l1->evictions);
	c->rejected = (int64) pg_atomic_read_u64(&l1->rejected);
	c->bytes = (int64) pg_atomic_read_u64(&l1->bytes);
	c->capacity = (int64) l1->nchunks * L1_CHUNK + (int64) l1->nentries * sizeof(L1Entry);
	LWLockAcquire(l1->lock, LW_SHARED);
	c->entries = l1->nused;
	LWLockRelease(l1->lock);
}

void
L1ResetCounts(void)
{
	if (l1 == NULL)
		return;
	pg_atomic_write_u64(&l1->hits, 0);
	pg_atomic_write_u64(&l1->stores, 0);
	pg_atomic_write_u64(&l1->evictions, 0);
	pg_atomic_write_u64(&l1->rejected, 0);
}

const char *
L1State(L1Counts *c)
{
	const char *why;

	memset(c, 0, sizeof(*c));
	if (L1Usable(&why))
	{
		L1GetCounts(c);
		return "on";
	}
	if (why != NULL)
		return psprintf("off: %s", why);
	if (cache_ext_local_cache_size > 0 && l1 == NULL)
		return "off: cache_ext is not in shared_preload_libraries";
	return "off";
}
