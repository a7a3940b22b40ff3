/*-------------------------------------------------------------------------
 *
 * outbox_internal.h
 *	  The outbox's shared memory, for its two files: outbox.c (the state,
 *	  the targets, delivery, whether hits are blocked) and outbox_worker.c
 *	  (the background worker, commits in flight).  The lock rules are in
 *	  outbox.c's opening comment and on each field.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_OUTBOX_INTERNAL_H
#define CACHE_EXT_OUTBOX_INTERNAL_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "invalidate.h"
#include "store/store.h"

#define OUTBOX_TARGETS	32	/* a cluster URL takes one per database (0.8: 8) */
#define OUTBOX_SIZE		512 /* keys kept per target */
#define TARGET_URL_LEN	1024
#define TARGET_BASE_LEN 128
#define TOKEN_LEN		33 /* 32 hex digits and a NUL */
#define RUN_ID_LEN		64

/* per-PGPROC arrays in shared memory (commit_began, commit_lsn) */
#define PROC_SLOTS() (MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts)

/* One Redis target; each field's comment opens with its lock rule. */
typedef struct OutboxTarget
{
	bool used;								/* claim: the slot is taken (never freed) */
	uint64 url_hash;						/* claim: identifies the URL (the state file
								 * holds no URL: it may contain a password) */
	char url[TARGET_URL_LEN];				/* lock: "" while known only from the
										 * file */
	char base[TARGET_BASE_LEN];				/* claim: "<prefix>s<server scope>" */
	pg_atomic_uint32 blocked;				/* atomic: hits are served only at 0; kept
								 * equal to what update_blocked computes */
	uint64 delivered;						/* lock: "requested" when last delivered here */
	uint64 want_bump;						/* lock: server bumps for this target alone ... */
	uint64 done_bump;						/* lock: ... and the last one delivered */
	bool checked;							/* lock: the incarnation token was compared */
	int delivering_pid;						/* lock: the process sending, or 0 */
	uint64 version;							/* lock: incremented when the items are dropped */
	char run_id[RUN_ID_LEN];				/* lock: of the Redis server, "" until
									 * known (with Sentinel and no INFO:
									 * "a" and a hash of its address) */
	char master_addr[STORE_ADDR_LEN];		/* lock: host:port last connected to,
											 * "" until known */
	pg_atomic_uint64 identity_seq;			/* atomic: incremented (under the lock)
									 * when run_id changes: connections
									 * made before are not used again */
	pg_atomic_uint32 blind;					/* atomic (written under the lock):
									 * the last connection's server gave no
									 * run_id (INFO refused): no hits from
									 * it (outbox_identity.c) */
	uint64 failovers;						/* lock: run_id changes with a new
									 * address since the server started */
	TimestampTz last_failover;				/* lock: the last one, or 0 */
	char file_token[TOKEN_LEN];				/* constant: the token this target
										 * should hold, from the state file,
										 * or "" */
	pg_atomic_uint64 fence_until;			/* atomic (written alone too): standby:
									 * lease seen alive until then (a
									 * TimestampTz); the hit path reads it */
	int nitems;								/* lock: items in use */
	char items[OUTBOX_SIZE][INVAL_KEY_LEN]; /* lock */
} OutboxTarget;

/* Each field's comment opens with its lock rule (see the banner). */
typedef struct OutboxShared
{
	LWLock *lock;			/* constant */
	pg_atomic_uint64 epoch; /* atomic: incremented (by update_blocked) at
								 * every change of a target's blocked count:
								 * see InvalEpoch() */
	uint64 requested;		/* lock: server-generation bumps asked for */
	bool lost;				/* lock: bumps were lost with no target to
								 * hold them: the next start is not clean */
	bool in_recovery;		/* lock: started as a standby or in recovery,
								 * not yet seen promoted; only ever goes from
								 * true to false */
	char token[TOKEN_LEN];	/* constant: this incarnation's */

	/*
	 * The background worker's latch, or NULL: set by the worker when it
	 * starts, cleared under the lock when it exits, read alone to wake it.
	 * As with PostgreSQL's ProcGlobal->walwriterLatch, a pointer is read and
	 * written whole, and a stale one names a PGPROC's latch, which stays
	 * valid shared memory: setting it costs a spurious wakeup at most.
	 */
	Latch *worker_latch;
	OutboxTarget targets[OUTBOX_TARGETS]; /* see OutboxTarget */
	int nslots;							  /* constant: entries of commit_began */

	/*
	 * atomic, per PGPROC: when its commit's bumps began to be in flight, or
	 * 0.  Entry i is written only by the process that owns PGPROC i (with
	 * no lock), read alone by the background worker.
	 */
	pg_atomic_uint64 commit_began[FLEXIBLE_ARRAY_MEMBER];
} OutboxShared;

/* written at a clean shutdown; its absence at startup means bumps may be lost */
#define STATE_FILE	"cache_ext.state"
#define STATE_MAGIC "cache_ext state 3"

extern OutboxShared *outbox_shared;

/* the target a worker or a delivery works on; -1: the backend's own */
extern int outbox_forced_target;

/* the before_shmem_exit callback that clears delivering_pid is set */
extern bool outbox_exit_callback_set;


/* outbox_state.c */
extern void write_state_file(int code, Datum arg);
extern bool last_shutdown_clean(void);

/* outbox.c */
extern int current_target(void);
extern void update_blocked(OutboxTarget *t);
extern void release_delivering(int code, Datum arg);
extern char *target_key(int t, const char *suffix);
extern bool deliver_target(int ti, int timeout_ms);
extern void check_promotion(void);

/* outbox_identity.c */
extern uint64 on_redis_connect(const char *run_id, const char *addr);
extern uint64 current_identity(void);

#endif /* CACHE_EXT_OUTBOX_INTERNAL_H */
