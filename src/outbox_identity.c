/*-------------------------------------------------------------------------
 *
 * outbox_identity.c
 *	  Which Redis server each target talks to: the store's listener of new
 *	  connections (a restart or a failover invalidates everything before
 *	  hits), the identity sequence that retires connections to a former
 *	  master, and cache_health's view of it (docs/invalidation.md,
 *	  "Failover").
 *
 * State: the fields run_id, master_addr, identity_seq, failovers and
 * last_failover of each OutboxTarget, under outbox.c's lock rules (see
 * outbox_internal.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "l1.h"
#include "outbox.h"
#include "outbox_internal.h"

/*
 * What the store compares: the target and its identity sequence in one
 * value, so that a connection announced to one target (key prefix, URL) is
 * not used for another before that one has heard of it.
 */
static uint64
identity_of(int ti, uint64 seq)
{
	return ((uint64) (ti + 1) << 48) | (seq & ((UINT64CONST(1) << 48) - 1));
}

/*
 * A new Redis connection (the store's listener): has the server restarted,
 * or is it another master (a failover), since we last saw it?  Either way
 * it may lack invalidations the former one acknowledged: hits wait for a
 * server-generation bump, the local tier forgets what it took, and the
 * identity sequence moves on, so that other processes drop connections
 * to the former server before their next use (store.c).  Returns the
 * sequence this connection is valid under.
 */
uint64
on_redis_connect(const char *run_id, const char *addr)
{
	int ti;
	OutboxTarget *t;
	char ident[RUN_ID_LEN];
	bool changed = false;
	bool failover = false;
	bool was_blind;
	char former[STORE_ADDR_LEN] = "";
	uint64 seq;

	if (outbox_shared == NULL)
		return 0;
	ti = current_target();
	if (ti < 0)
		return 0;
	t = &outbox_shared->targets[ti];
	if (run_id != NULL)
		strlcpy(ident, run_id, sizeof(ident));
	else if (strcmp(StoreMode(), "single") != 0 && addr[0] != '\0')
		snprintf(ident, sizeof(ident), "a%016llx",
				 (unsigned long long) hash_bytes_extended((const unsigned char *) addr,
														  strlen(addr), 0));
	else
		ident[0] = '\0'; /* unknown */

	LWLockAcquire(outbox_shared->lock, LW_EXCLUSIVE);

	/*
	 * A server that does not say its run_id serves no hits (InvalRedisBlind):
	 * a restart from older data behind the same address would go unseen.
	 * Once it says it again, a target that never knew its run_id cannot
	 * tell what happened meanwhile: that counts as a change too.
	 */
	was_blind = pg_atomic_read_u32(&t->blind) != 0;
	pg_atomic_write_u32(&t->blind, run_id == NULL ? 1 : 0);
	if (ident[0] != '\0' &&
		((t->run_id[0] != '\0' && strcmp(t->run_id, ident) != 0) ||
		 (was_blind && run_id != NULL && t->run_id[0] == '\0')))
	{
		changed = true;
		failover = t->master_addr[0] != '\0' && strcmp(t->master_addr, addr) != 0;
		strlcpy(former, t->master_addr, sizeof(former));
		t->want_bump++;
		update_blocked(t);
		L1GenBumpAll(); /* what L1 took from this Redis may be stale too */
		pg_atomic_fetch_add_u64(&t->identity_seq, 1);
		if (failover)
		{
			t->failovers++;
			t->last_failover = GetCurrentTimestamp();
		}
	}
	if (ident[0] != '\0')
	{
		strlcpy(t->run_id, ident, sizeof(t->run_id));
		strlcpy(t->master_addr, addr, sizeof(t->master_addr));
	}
	seq = pg_atomic_read_u64(&t->identity_seq);
	LWLockRelease(outbox_shared->lock);

	/* one process sees each change: one message per failover */
	if (failover)
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("cache_ext found a new Redis master: %s, was %s", addr, former),
				 errdetail("A failover may lose invalidations the former master acknowledged, so every cached result is invalidated before hits are served again."),
				 errhint("cache_health() shows the master in use and the failovers seen.")));
	else if (changed)
		ereport(LOG,
				(errmsg("cache_ext will invalidate every cached result before serving hits"),
				 errdetail("The Redis server restarted (its run_id changed), so it may have lost invalidations.")));
	return identity_of(ti, seq);
}

/* The identity sequence of this backend's target (store.c), or 0. */
uint64
current_identity(void)
{
	int ti = outbox_shared ? current_target() : -1;

	return ti < 0 ? 0 : identity_of(ti, pg_atomic_read_u64(&outbox_shared->targets[ti].identity_seq));
}

/* InvalRedisBlind (outbox.h): an atomic, no lock. */
bool
InvalRedisBlind(void)
{
	int ti = outbox_shared ? current_target() : -1;

	return ti >= 0 && pg_atomic_read_u32(&outbox_shared->targets[ti].blind) != 0;
}

/*
 * For cache_health(): the master address last connected to at this
 * backend's target ("" when unknown, palloc'd), the failovers seen and
 * the last one's time (0 when none).
 */
void
InvalRedisIdentity(char **addr, int64 *failovers, TimestampTz *last_failover)
{
	int ti = outbox_shared ? current_target() : -1;

	*addr = pstrdup("");
	*failovers = 0;
	*last_failover = 0;
	if (ti < 0)
		return;
	LWLockAcquire(outbox_shared->lock, LW_SHARED);
	*addr = pstrdup(outbox_shared->targets[ti].master_addr);
	*failovers = (int64) outbox_shared->targets[ti].failovers;
	*last_failover = outbox_shared->targets[ti].last_failover;
	LWLockRelease(outbox_shared->lock);
}
