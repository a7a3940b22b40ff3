/*-------------------------------------------------------------------------
 *
 * cache_ext.c
 *	  Module initialisation: each module's settings, the invalidation
 *	  callbacks and hooks, shared memory hooks.
 *
 * Settings are defined whether or not the library is preloaded, each by the
 * module that uses it (docs/settings.md lists them all); shared memory (the
 * statistics, the outbox, the local tier) is requested only when it is
 * preloaded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "cache_ext.h"
#include "invalidate.h"
#include "keys.h"
#include "l1.h"
#include "commitq.h"
#include "flight.h"
#include "sessions.h"
#include "entry_pack.h"
#include "rules.h"
#include "refresh.h"

PG_MODULE_MAGIC;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void _PG_init(void);

static void
cache_ext_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	CacheStatsShmemRequest();
	InvalShmemRequest();
	CommitQueueShmemRequest();
	QueryStatsShmemRequest();
	L1ShmemRequest();
	FlightShmemRequest();
	RulesShmemRequest();
	RefreshShmemRequest();
}

static void
cache_ext_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	CacheStatsShmemInit();
	InvalShmemInit();
	CommitQueueShmemInit();
	QueryStatsShmemInit();
	L1ShmemInit();
	FlightShmemInit();
	RulesShmemInit();
	RefreshShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	PipelineDefineGucs();
	RedisDefineGucs();
	KeysDefineGucs();
	EntryDefineGucs();
	EntryPackDefineGucs();
	InvalDefineGucs();
	CommitQueueDefineGucs();
	StatsDefineGucs();
	SecretsDefineGucs();
	L1DefineGucs();
	FlightDefineGucs();
	SessionsDefineGucs();
	ValuesDefineGucs();
	RefreshDefineGucs();
	MemoryKeepDefineGucs();
	SecretsLoad();

	InvalInit(); /* defines the outbox's settings too */
	RulesInit(); /* cache rules: executor hooks */
	MarkGUCPrefixReserved("cache_ext");

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = cache_ext_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cache_ext_shmem_startup;
}
