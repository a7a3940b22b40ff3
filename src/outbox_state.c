/*-------------------------------------------------------------------------
 *
 * outbox_state.c
 *	  The state file (cache_ext.state in the data directory): written at a
 *	  clean postmaster exit with this incarnation's token and each
 *	  target's Redis run_id, read (and removed) at the next start to decide
 *	  whether the server generation must be bumped: a start that cannot
 *	  prove that nothing was lost invalidates everything.
 *
 * It runs when no other process is attached (creation, postmaster exit) and
 * touches the outbox's shared fields without the lock (outbox.c's banner).
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
#include "invalidate.h"
#include "keys.h"
#include "outbox.h"
#include "outbox_internal.h"
#include "commitq.h"
#include "store/store.h"

/*
 * Postmaster exit: leave a note that nothing was lost, so the next start
 * need not bump the server generation: this incarnation's token and each
 * target's Redis run_id.  Not on a crash (code != 0), nor with
 * invalidations undelivered on any target.
 */
void
write_state_file(int code, Datum arg)
{
	FILE *f;

	if (code != 0 || outbox_shared == NULL || outbox_shared->lost ||
		!CommitQueueEmpty())
		return;
	for (int i = 0; i < OUTBOX_TARGETS; i++)
	{
		OutboxTarget *t = &outbox_shared->targets[i];

		if (t->used && (t->nitems != 0 || t->want_bump > t->done_bump || outbox_shared->requested > t->delivered))
			return;
	}
	f = fopen(STATE_FILE, "w");
	if (f == NULL)
		return;
	fprintf(f, "%s\n", STATE_MAGIC);
	for (int i = 0; i < OUTBOX_TARGETS; i++)
	{
		OutboxTarget *t = &outbox_shared->targets[i];

		/* a target not checked this time still holds the token it had */
		if (t->used)
			fprintf(f, "%016llx %s %s %s\n", (unsigned long long) t->url_hash,
					t->base, t->run_id[0] ? t->run_id : "-",
					t->checked			 ? outbox_shared->token :
						t->file_token[0] ? t->file_token :
										   "-");
	}
	fclose(f);
}

/*
 * Whether the last shutdown was clean: the control file says so and the
 * state file exists (it is removed here, and by any backend that runs
 * cache_ext without shared memory).  Fills the file's token and known
 * targets into shared memory.
 */
bool
last_shutdown_clean(void)
{
	bool crc_ok;
	ControlFileData *cf;
	FILE *f;
	bool clean;
	char line[TARGET_BASE_LEN + RUN_ID_LEN + 64];
	int n = 0;

	cf = get_controlfile(DataDir, &crc_ok);
	clean = crc_ok && (cf->state == DB_SHUTDOWNED || cf->state == DB_SHUTDOWNED_IN_RECOVERY);
	pfree(cf);
	f = fopen(STATE_FILE, "r");
	if (f == NULL)
		return false;
	if (fgets(line, sizeof(line), f) == NULL ||
		strncmp(line, STATE_MAGIC, strlen(STATE_MAGIC)) != 0)
	{
		/* a 0.2 file (one run_id, no token): clean, nothing known */
		fclose(f);
		unlink(STATE_FILE);
		return clean;
	}
	while (n < OUTBOX_TARGETS && fgets(line, sizeof(line), f) != NULL)
	{
		OutboxTarget *t = &outbox_shared->targets[n];
		char base[TARGET_BASE_LEN];
		char run_id[RUN_ID_LEN];
		char token[TOKEN_LEN];
		unsigned long long h;

		if (sscanf(line, "%llx %127s %63s %32s", &h, base, run_id, token) != 4)
			continue;
		if (strcmp(token, "-") != 0)
			strlcpy(t->file_token, token, sizeof(t->file_token));
		t->used = true;
		t->url_hash = (uint64) h;
		strlcpy(t->base, base, sizeof(t->base));
		if (strcmp(run_id, "-") != 0)
			strlcpy(t->run_id, run_id, sizeof(t->run_id));
		n++;
	}
	fclose(f);
	unlink(STATE_FILE);
	return clean;
}
