/*-------------------------------------------------------------------------
 *
 * commitq.h
 *	  Commits that do not wait on the network (commitq.c): the commit
 *	  queue, the in-flight counters readers wait on, and the LSN watermark
 *	  hot standbys check.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_COMMITQ_H
#define CACHE_EXT_COMMITQ_H

#include "postgres.h"

#include "access/xlogdefs.h"

/* cache_ext.async_invalidation */
extern bool cache_ext_async_commit;
/* cache_ext.watermark_interval, ms */
extern int cache_ext_watermark_interval;
/* cache_ext.commit_queue_delay, ms */
extern int cache_ext_commit_queue_delay;
extern void CommitQueueDefineGucs(void);

extern void CommitQueueShmemRequest(void);
extern void CommitQueueShmemInit(void); /* with AddinShmemInitLock held */

/* From PRE_COMMIT of a transaction that bumps until its keys are queued or sent. */
extern void CommitQueueMarkBegin(void);
extern void CommitQueueMarkEnd(void);

/* Queue a committed transaction's keys; false: send them now instead. */
extern bool CommitQueuePush(char **keys, int n);
extern bool CommitQueueEmpty(void);
extern int CommitQueueCountFor(int ti);

/* Before a lookup: wait until none of keys has a bump on its way. */
extern int CommitQueueWaitBudget(void);
extern bool CommitQueueWaitDelivered(char *const *keys, int n, int timeout_ms);

/* The worker: deliver what is queued and publish the watermark. */
extern int CommitQueueDeliver(bool force);
extern bool CommitQueueStandbysConnected(void);

/* Hot standby: the watermark key of its target (NULL: none) ... */
extern char *CommitQueueMarkKey(void);

/* ... and whether the watermark read from Redis covers replay. */
extern bool CommitQueueWatermarkCovers(bool has_mark, uint64 mark,
									   XLogRecPtr replay);

extern int CommitQueueMarkBudget(void);
extern bool CommitQueueAwaitMark(const char *mark_key, XLogRecPtr replay,
								 int timeout_ms);
extern char *CommitQueueWatermarkWhy(void);

#endif /* CACHE_EXT_COMMITQ_H */
