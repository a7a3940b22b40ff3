/*-------------------------------------------------------------------------
 *
 * sessions_user.c
 *	  A user's sessions as a whole: cache_sessions(user_id) lists them,
 *	  cache_session_destroy_all(user_id) logs the user out everywhere
 *	  (docs/sessions.md).
 *
 * A user's index is a Redis set under the keyed hash of the user id,
 * holding the keyed hashes of the user's session ids (64 hex digits).
 * Sessions expire by their TTL and leave their member behind: the index
 * is cleaned as it is read (members whose session is gone, or that are
 * not 64 hex digits, are removed), and it expires itself after the
 * longest absolute deadline of the sessions added to it.
 *
 * No state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/hsearch.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "keys.h"
#include "sessions.h"
#include "store/store.h"
#include "store/store_sessions.h"

PG_FUNCTION_INFO_V1(cache_sessions);
PG_FUNCTION_INFO_V1(cache_session_destroy_all);

/*
 * The most SSCAN batches one call reads (about 256 members each): a bound
 * on the loop whatever Redis answers.
 */
#define SESSION_INDEX_BATCHES 100000

/* sessions popped and deleted per round trip by cache_session_destroy_all */
#define SESSION_DESTROY_BATCH 256

/* sessions read per round trip by cache_sessions */
#define SESSION_READ_BATCH 64

static bool
is_member(const char *m)
{
	if (strlen(m) != 2 * CE_HASH_LEN)
		return false;
	for (const char *p = m; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* the first bytes of the hash a member names, for SessionCheckValue */
static void
member_fp(const char *m, uint8 *fp)
{
	(void) hex_decode(m, CE_SESSION_FP_LEN * 2, (char *) fp);
}

/* Raise: Redis could not be used for what (why says how). */
static void
index_failed(const char *what, const char *why)
{
	SessionSetStatus("UNAVAILABLE: %s", why);
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("could not %s", what),
			 errdetail_internal("%s", why)));
}

/*
 * The next batch of the members of the index idx (SSCAN from cursor),
 * raising when Redis is unavailable or the index is too long to walk;
 * *batches counts the calls.
 */
static char **
next_members(const char *idx, char *cursor, int *n, int *batches,
			 const char *what)
{
	char **members;
	const char *why = NULL;

	CHECK_FOR_INTERRUPTS();
	if (++*batches > SESSION_INDEX_BATCHES)
		index_failed(what, "the index of the user's sessions is too long to walk");
	if (StoreSessionMembers(idx, cursor, &members, n, &why) != STORE_OK)
		index_failed(what, why);
	return members;
}

/* The key of the user's index. */
static char *
index_key(text *user)
{
	SessionsCheckReady();
	return SessionUserIndex(VARDATA_ANY(user), VARSIZE_ANY_EXHDR(user));
}

/*
 * cache_session_destroy_all(user_id text) RETURNS integer: delete every
 * session the user's index names, a batch at a time, each batch popped
 * from the index and deleted by one script, so that a rotation (also a
 * script) either finds its session gone or has already put the new one
 * in the index, where a later batch takes it (review15b F4); until the
 * index is empty.  Sessions created while this runs may survive.  The
 * number of sessions deleted.  Raises when Redis is unavailable or
 * refuses scripts (what was deleted before stays deleted).
 */
Datum
cache_session_destroy_all(PG_FUNCTION_ARGS)
{
	const char *what = "destroy the user's sessions";
	char *idx = index_key(PG_GETARG_TEXT_PP(0));
	char *before = SessionKeyFromHex("");
	int64 total = 0;

	for (int batches = 0;; batches++)
	{
		int64 deleted = 0;
		const char *why = NULL;

		CHECK_FOR_INTERRUPTS();
		if (batches >= SESSION_INDEX_BATCHES)
			index_failed(what, "the index of the user's sessions is too long to walk");
		if (StoreSessionDestroyBatch(idx, before, SESSION_DESTROY_BATCH,
									 2 * CE_HASH_LEN, &deleted, &why) != STORE_OK)
			index_failed(what, why);
		if (deleted < 0)
			break;
		total += deleted;
	}
	SessionSetStatus("DESTROYED %lld", (long long) total);
	PG_RETURN_INT32((int32) Min(total, PG_INT32_MAX));
}

/* One listed session as a row of cache_sessions. */
static void
put_row(ReturnSetInfo *rsinfo, const LoadedSession *ls, TimestampTz now)
{
	Datum values[5];
	bool nulls[5] = {false, false, false, false, false};
	TimestampTz expires;
	TimestampTz seen;

	/*
	 * The TTL is Redis's, not sealed: a lengthened one must neither
	 * overflow nor show an end after the absolute deadline, which ends the
	 * session whatever its TTL.  The deadline is at most ten years after
	 * created (CeSessionParse), so the TTL is capped at that first.
	 */
	expires = now + Min(ls->pttl_ms, CE_SESSION_MAX_MS) * 1000;
	expires = Min(expires, ls->s.deadline);
	seen = expires - ls->s.idle_ms * 1000;

	values[0] = PointerGetDatum(cstring_to_text_with_len(ls->s.id_prefix,
														 CE_SESSION_PREFIX_LEN));
	values[1] = TimestampTzGetDatum(ls->s.created);
	values[2] = TimestampTzGetDatum(Max(seen, ls->s.created));
	values[3] = TimestampTzGetDatum(expires);
	values[4] = Int32GetDatum(ls->s.version);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Read members[0..n) (valid ones) and list those alive and the user's;
 * the others go to dead (members to remove) and bad (corrupt keys to
 * delete).  False when Redis failed (*why).
 */
static bool
list_batch(ReturnSetInfo *rsinfo, text *user, char **members, int n,
		   char **dead, int *ndead, char **bad, int *nbad, const char **why)
{
	char **keys = palloc(sizeof(char *) * n);
	StoreSessionValue *vals = palloc(sizeof(StoreSessionValue) * n);
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < n; i++)
		keys[i] = SessionKeyFromHex(members[i]);
	if (StoreSessionRead(keys, n, (size_t) cache_ext_max_entry_size, vals, why) != STORE_OK)
		return false;
	for (int i = 0; i < n; i++)
	{
		LoadedSession ls;
		uint8 fp[CE_SESSION_FP_LEN];

		member_fp(members[i], fp);
		SessionCheckValue(&vals[i], keys[i], fp, &ls);
		if (ls.verdict == SESSION_OK &&
			(ls.s.user_len != VARSIZE_ANY_EXHDR(user) ||
			 memcmp(ls.s.user, VARDATA_ANY(user), ls.s.user_len) != 0))
		{
			/* a member moved here from another user's index */
			CacheStatsAdd(CS_CORRUPT, 1);
			dead[(*ndead)++] = members[i];
			continue;
		}
		if (ls.verdict == SESSION_OK)
			put_row(rsinfo, &ls, now);
		else if (ls.too_large)
			continue; /* unreadable with this session's limit: left alone */
		else
		{
			dead[(*ndead)++] = members[i];
			if (ls.verdict == SESSION_CORRUPT)
				bad[(*nbad)++] = keys[i];
		}
		if (vals[i].data)
			pfree(vals[i].data);
	}
	return true;
}

/*
 * cache_sessions(user_id text) RETURNS TABLE (id_prefix text, created
 * timestamptz, last_seen timestamptz, expires timestamptz, version int):
 * the user's live sessions.  last_seen is when the idle timeout was last
 * extended (to within an eighth of it; at least created); expires is
 * when the session ends unless it is used again.  Cleans the index of
 * what it no longer names.  Redis unavailable raises (an empty list would
 * say the user has no sessions).
 */
Datum
cache_sessions(PG_FUNCTION_ARGS)
{
	const char *what = "list the user's sessions";
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text *user = PG_GETARG_TEXT_PP(0);
	char *idx;
	char cursor[STORE_CURSOR_LEN] = "0";
	int batches = 0;
	int removed = 0;
	HTAB *seen;
	HASHCTL ctl;

	InitMaterializedSRF(fcinfo, 0);
	idx = index_key(user);
	/* SSCAN may give a member twice (while Redis rehashes the set) */
	ctl.keysize = 2 * CE_HASH_LEN + 1;
	ctl.entrysize = ctl.keysize;
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("cache_sessions members", 256, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	do
	{
		int n;
		char **members = next_members(idx, cursor, &n, &batches, what);
		char **dead = palloc(sizeof(char *) * (n + 1));
		char **bad = palloc(sizeof(char *) * (n + 1));
		int ndead = 0;
		int nbad = 0;
		int64 deleted;
		const char *why = NULL;

		for (int i = 0; i < n;)
		{
			char *batch[SESSION_READ_BATCH];
			int nb = 0;

			for (; i < n && nb < SESSION_READ_BATCH; i++)
			{
				bool dup;

				if (!is_member(members[i]))
					dead[ndead++] = members[i];
				else if (hash_search(seen, members[i], HASH_ENTER, &dup), !dup)
					batch[nb++] = members[i];
			}
			if (nb > 0 &&
				!list_batch(rsinfo, user, batch, nb, dead, &ndead, bad, &nbad, &why))
				index_failed(what, why);
		}
		/* cleaning is best effort: the next reader tries again */
		(void) StoreSessionDelete(bad, nbad, idx, dead, ndead, &deleted, &why);
		removed += ndead;
	} while (strcmp(cursor, "0") != 0);
	SessionSetStatus("LISTED (%d removed from the index)", removed);
	return (Datum) 0;
}
