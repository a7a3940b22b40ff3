/*-------------------------------------------------------------------------
 *
 * outbox_worker.c
 *	  The outbox's background worker ("cache_ext outbox", primary only):
 *	  delivers every target's outbox and keeps the standby leases, every
 *	  quarter of cache_ext.standby_lease; and the commits in flight, which
 *	  keep a lease from being renewed past bumps not yet sent.
 *
 * Shared state is outbox.c's (outbox_internal.h has its lock rules).
 * State of its own (the worker's, backend-local): which leases it dropped.
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
#include "outbox.h"
#include "outbox_internal.h"
#include "store/store.h"

/* ---- commits in flight ---- */

/*
 * From XACT_EVENT_PRE_COMMIT of a transaction that will bump generations:
 * until OutboxCommitEnd, its bumps are in flight and the lease is not
 * renewed past them.
 */
void
OutboxCommitBegin(void)
{
	if (outbox_shared == NULL || MyProc == NULL || MyProc->pgprocno >= outbox_shared->nslots)
		return;
	pg_atomic_write_u64(&outbox_shared->commit_began[MyProc->pgprocno],
						(uint64) GetCurrentTimestamp());
	CommitQueueMarkBegin();
}

void
OutboxCommitEnd(void)
{
	if (outbox_shared == NULL || MyProc == NULL || MyProc->pgprocno >= outbox_shared->nslots)
		return;
	if (pg_atomic_read_u64(&outbox_shared->commit_began[MyProc->pgprocno]) != 0)
		pg_atomic_write_u64(&outbox_shared->commit_began[MyProc->pgprocno], 0);
	CommitQueueMarkEnd();
}

/*
 * Whether a commit that began before "since" still has bumps in flight
 * (atomics, read alone: a commit that begins during the scan began after
 * "since").
 */
static bool
commit_in_flight_since(TimestampTz since)
{
	for (int i = 0; i < outbox_shared->nslots; i++)
	{
		uint64 b = pg_atomic_read_u64(&outbox_shared->commit_began[i]);

		if (b != 0 && (TimestampTz) b < since)
			return true;
	}
	return false;
}

/* ---- the background worker ---- */

/* the worker: whether it has dropped target i's lease since it last renewed it */
static bool lease_dropped[OUTBOX_TARGETS];

/*
 * One pass over the targets: deliver, then renew or drop each lease (drop
 * it once per blocked spell: a Redis that takes the UNLINK but refuses the
 * bumps would otherwise log a warning at every pass).
 */
static void
worker_pass(TimestampTz prev_pass)
{
	for (int ti = 0; ti < OUTBOX_TARGETS; ti++)
	{
		OutboxTarget *t = &outbox_shared->targets[ti];
		char url[TARGET_URL_LEN];
		bool used;
		bool renew;

		LWLockAcquire(outbox_shared->lock, LW_SHARED);
		used = t->used && t->url[0] != '\0';
		strlcpy(url, t->url, sizeof(url));
		LWLockRelease(outbox_shared->lock);
		if (!used)
			continue;

		/*
		 * The client speaks to whatever cache_ext.redis_url says: point it
		 * at the target for this pass (the GUC's own value is put back
		 * before anything else can look at it).
		 */
		cache_ext_redis_url = url;
		outbox_forced_target = ti;
		if (pg_atomic_read_u32(&t->blocked) != 0)
			deliver_target(ti, cache_ext_command_timeout);
		outbox_forced_target = ti;
		renew = pg_atomic_read_u32(&t->blocked) == 0 &&
			!commit_in_flight_since(prev_pass);
		if (!renew && lease_dropped[ti])
		{
			outbox_forced_target = -1;
			continue;
		}
		if (renew)
			(void) StoreLeaseSet(target_key(ti, ":lease"), outbox_shared->token,
								 cache_ext_standby_lease,
								 cache_ext_command_timeout);
		else
		{
			bool dropped;

			(void) StoreLeaseDelete(target_key(ti, ":lease"),
									cache_ext_command_timeout, &dropped);
			if (dropped)
				lease_dropped[ti] = true;
		}
		if (renew)
			lease_dropped[ti] = false;
		outbox_forced_target = -1;
	}
}

PGDLLEXPORT void OutboxWorkerMain(Datum arg);

/*
 * The background worker (primary only: it starts when recovery is
 * finished): delivers every target's outbox and keeps the standby leases,
 * every quarter of cache_ext.standby_lease.
 */
void
OutboxWorkerMain(Datum arg)
{
	MemoryContext pass_cxt;
	TimestampTz prev_pass = GetCurrentTimestamp();

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	pass_cxt = AllocSetContextCreate(TopMemoryContext, "cache_ext outbox worker",
									 ALLOCSET_DEFAULT_SIZES);
	before_shmem_exit(release_delivering, (Datum) 0);
	outbox_exit_callback_set = true;
	outbox_shared->worker_latch = MyLatch;

	for (;;)
	{
		TimestampTz start = GetCurrentTimestamp();
		MemoryContext old;
		char *save_url;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		check_promotion(); /* reads in_recovery under the lock */
		old = MemoryContextSwitchTo(pass_cxt);
		save_url = cache_ext_redis_url;
		worker_pass(prev_pass);
		cache_ext_redis_url = save_url;
		MemoryContextSwitchTo(old);
		MemoryContextReset(pass_cxt);
		prev_pass = start;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(cache_ext_standby_lease / 4, 50), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
