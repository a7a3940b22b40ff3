/*-------------------------------------------------------------------------
 *
 * sessions.c
 *	  Sessions in Redis, from SQL: cache_session_create, _get, _update,
 *	  _rotate, _destroy and cache_session_status (docs/sessions.md).  A
 *	  user's sessions as a whole are in sessions_user.c.
 *
 * A session id is 256 bits from pg_strong_random as URL-safe base64; it
 * is given to the caller and never stored.  Redis holds, under the keyed
 * hash of the id (keys.c's KeyHash: HMAC-SHA256 when a secret or an
 * encryption key is set), the session in session_format.h's format,
 * sealed with AES-256-GCM (entry.c's EntrySeal, the Redis key as
 * associated data), and the key expires by its TTL: the smaller of the
 * idle timeout and the time left to the absolute deadline.
 *
 * Sliding expiry without a write per read: a read extends the TTL
 * (PEXPIRE) only when the extension would add more than an eighth of the
 * idle timeout, so a session read continuously is written at most once
 * per idle_timeout / 8, and after any read at least 7/8 of its idle
 * timeout is left.
 *
 * State: the last call's status (backend-local, cache_session_status()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/int.h"
#include "common/pg_prng.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "entry.h"
#include "keys.h"
#include "sessions.h"
#include "store/store_sessions.h"
#include "subxact.h"

PG_FUNCTION_INFO_V1(cache_session_create);
PG_FUNCTION_INFO_V1(cache_session_get);
PG_FUNCTION_INFO_V1(cache_session_update);
PG_FUNCTION_INFO_V1(cache_session_rotate);
PG_FUNCTION_INFO_V1(cache_session_destroy);
PG_FUNCTION_INFO_V1(cache_session_status);

bool cache_ext_sessions_strict = false;
static bool sessions_allow_unsealed = false;

/* the last call's status, for cache_session_status() */
static char last_status[256] = "";

/* how often update and rotate read again after a concurrent write */
#define SESSION_CAS_ATTEMPTS 10

void
SessionSetStatus(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_status, sizeof(last_status), fmt, ap);
	va_end(ap);
}

/* SessionsCheckReady (sessions.h) */
void
SessionsCheckReady(void)
{
	if (!KeyEncryptionOn() && !sessions_allow_unsealed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sessions need an encryption key"),
				 errdetail("Without cache_ext.encryption_key_file, session data and user ids would be stored in Redis in plaintext."),
				 errhint("Set cache_ext.encryption_key_file (at server start), or cache_ext.sessions_allow_unsealed = on where plaintext in Redis is acceptable.")));
}

static char *
hex_of(const uint8 *hash)
{
	char *hex = palloc(2 * CE_HASH_LEN + 1);

	hex_encode((const char *) hash, CE_HASH_LEN, hex);
	hex[2 * CE_HASH_LEN] = '\0';
	return hex;
}

/* The keyed hash of a session id (its CE_SESSION_ID_BYTES raw bytes). */
static void
session_hash(const uint8 *raw, uint8 *hash)
{
	StringInfoData m;

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext session");
	KeyAddField(&m, raw, CE_SESSION_ID_BYTES);
	KeyHash(&m, hash);
	pfree(m.data);
}

/* SessionUserIndex (sessions.h) */
char *
SessionUserIndex(const char *user, size_t len)
{
	StringInfoData m;
	uint8 hash[CE_HASH_LEN];

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext session user");
	KeyAddField(&m, user, (uint32) len);
	KeyHash(&m, hash);
	pfree(m.data);
	return KeySessionName('u', hex_of(hash));
}

/* SessionKeyFromHex (sessions.h) */
char *
SessionKeyFromHex(const char *hex)
{
	return KeySessionName('s', hex);
}

/*
 * A session id given by a caller: its key and keyed hash, or false when
 * the text is not a session id (nothing to look up).
 */
static bool
session_key(text *id, char **key, char **hex, uint8 *hash)
{
	uint8 raw[CE_SESSION_ID_BYTES];

	if (!CeSessionIdDecode(VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id), raw))
		return false;
	session_hash(raw, hash);
	*hex = hex_of(hash);
	*key = SessionKeyFromHex(*hex);
	return true;
}

/* A new session id into id (CE_SESSION_ID_LEN + 1), its key and hash. */
static void
new_session_id(char *id, char **key, char **hex, uint8 *hash)
{
	uint8 raw[CE_SESSION_ID_BYTES];

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random session id")));
	CeSessionIdEncode(raw, id);
	session_hash(raw, hash);
	*hex = hex_of(hash);
	*key = SessionKeyFromHex(*hex);
}

/*
 * s in its stored form for key: sealed when an encryption key is set
 * (the key as associated data), else as it is.  Raises when it would be
 * larger than cache_ext.max_entry_size.
 */
static char *
session_value(const CeSession *s, const char *key, size_t *len)
{
	size_t plen = CeSessionSize(s);
	char *plain = palloc(plen + 1);
	StringInfoData sealed;

	if (plen + CE_SEALED_OVERHEAD > (size_t) cache_ext_max_entry_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("session data too large: %zu bytes stored, the limit is %d",
						plen + CE_SEALED_OVERHEAD, cache_ext_max_entry_size),
				 errhint("Raise cache_ext.max_entry_size, or keep less in the session.")));
	CeSessionWrite(s, (uint8 *) plain);
	if (!KeyEncryptionOn())
	{
		*len = plen;
		return plain;
	}
	EntrySeal(plain, plen, key, &sealed);
	pfree(plain);
	*len = sealed.len;
	return sealed.data;
}

/* SessionCheckValue (sessions.h) */
void
SessionCheckValue(const StoreSessionValue *v, const char *key,
				  const uint8 *fp, LoadedSession *ls)
{
	char *plain;
	size_t plen;
	const char *why = NULL;

	memset(ls, 0, sizeof(*ls));
	ls->verdict = SESSION_CORRUPT;
	if (!v->found && !v->wrong_type)
	{
		ls->verdict = SESSION_ABSENT;
		return;
	}
	if (v->wrong_type)
		why = "the key holds another type";
	else if (v->too_large)
		why = "larger than cache_ext.max_entry_size";
	else if (v->no_ttl)
		why = "the key has no expiry";
	else if (KeyEncryptionOn())
	{
		plain = EntryOpen(v->data, v->len, key, &plen, &why);
		if (plain != NULL)
			why = CeSessionParse((const uint8 *) plain, plen, &ls->s);
	}
	else if (EntryIsSealed(v->data, v->len))
		why = "sealed, but no encryption key is set";
	else
		why = CeSessionParse((const uint8 *) v->data, v->len, &ls->s);
	if (why == NULL && memcmp(ls->s.fingerprint, fp, CE_SESSION_FP_LEN) != 0)
		why = "the session belongs to another key";
	if (why != NULL)
	{
		ls->why = why;
		/* too large for this session's limit is not corrupt (kept, uncounted) */
		ls->too_large = v->too_large;
		if (!v->too_large)
			CacheStatsAdd(CS_CORRUPT, 1);
		return;
	}
	ls->raw = v->data;
	ls->raw_len = v->len;
	ls->pttl_ms = v->pttl_ms;
	ls->verdict = GetCurrentTimestamp() >= ls->s.deadline ? SESSION_EXPIRED : SESSION_OK;
}

/*
 * Read the session under key (keyed hash hash) into *ls.  A corrupt value
 * is counted and deleted, best effort: the session is gone either way.
 */
static void
load_session(char *key, const uint8 *hash, LoadedSession *ls)
{
	StoreSessionValue v;
	const char *why = NULL;
	int64 deleted;

	if (StoreSessionRead(&key, 1, (size_t) cache_ext_max_entry_size, &v, &why) != STORE_OK)
	{
		memset(ls, 0, sizeof(*ls));
		ls->verdict = SESSION_DOWN;
		ls->why = why;
		return;
	}
	SessionCheckValue(&v, key, hash, ls);
	if (ls->verdict == SESSION_CORRUPT && !ls->too_large)
		(void) StoreSessionDelete(&key, 1, NULL, NULL, 0, &deleted, &why);
}

/*
 * A read found no usable session: the status says why, and with
 * cache_ext.sessions_strict an unavailable Redis or a corrupt value
 * raises.
 */
static void
report_unusable(const LoadedSession *ls, const char *what)
{
	switch (ls->verdict)
	{
		case SESSION_ABSENT:
			SessionSetStatus("ABSENT");
			break;
		case SESSION_EXPIRED:
			SessionSetStatus("EXPIRED");
			break;
		case SESSION_DOWN:
			SessionSetStatus("UNAVAILABLE: %s", ls->why);
			if (cache_ext_sessions_strict)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not %s: Redis is unavailable", what),
						 errdetail_internal("%s", ls->why),
						 errhint("Turn cache_ext.sessions_strict off to get NULL instead.")));
			break;
		case SESSION_CORRUPT:
			SessionSetStatus("CORRUPT: %s", ls->why);
			if (cache_ext_sessions_strict)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not %s: the session in Redis was refused", what),
						 errdetail("%s.", ls->why)));
			break;
		case SESSION_OK:
			break;
	}
}

/* A write could not reach Redis: always an error (the caller must know). */
static void
write_failed(const char *what, const char *why)
{
	SessionSetStatus("UNAVAILABLE: %s", why);
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("could not %s", what),
			 errdetail_internal("%s", why),
			 errhint("Check cache_health(). Session writes need Redis, and EVAL for create, update and rotate.")));
}

/* An interval argument in ms: positive, at most CE_SESSION_MAX_MS. */
static int64
interval_ms(Interval *iv, const char *name)
{
	double ms = (double) iv->time / 1000.0 +
		((double) iv->day + (double) iv->month * DAYS_PER_MONTH) * (USECS_PER_DAY / 1000);

	if (!(ms >= 1.0) || ms > (double) CE_SESSION_MAX_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 millisecond and 10 years", name)));
	return (int64) ms;
}

/* The data argument as jsonb's text (palloc'd). */
static char *
data_text(Jsonb *jb, uint32 *len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	(void) JsonbToCString(&buf, &jb->root, VARSIZE(jb));
	*len = buf.len;
	return buf.data;
}

/*
 * After losing a compare and set to a concurrent write: wait a random
 * time (up to 0.5 ms doubled per attempt, at most 50 ms) before reading
 * again, so that two writers looping in step do not keep colliding.
 */
static void
cas_backoff(int attempt)
{
	long max_us = Min(50000L, 500L << attempt);

	pg_usleep((long) (pg_prng_double(&pg_global_prng_state) * max_us));
}

/* The TTL a session gets now: its idle timeout, within its deadline. */
static int64
session_ttl(const CeSession *s, TimestampTz now)
{
	int64 left = (s->deadline - now) / 1000;

	return Min(s->idle_ms, left);
}

/*
 * cache_session_create(user_id text, data jsonb, idle_timeout interval,
 * max_lifetime interval) RETURNS text: a new session's id.  Raises when
 * Redis could not take it.
 */
Datum
cache_session_create(PG_FUNCTION_ARGS)
{
	CeSession s;
	char id[CE_SESSION_ID_LEN + 1];
	char *key;
	char *hex;
	uint8 hash[CE_HASH_LEN];
	char *value;
	size_t len;
	text *user;
	int64 life_ms;
	bool created;
	const char *why = NULL;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the arguments of cache_session_create must not be null")));
	SessionsCheckReady();
	user = PG_GETARG_TEXT_PP(0);
	memset(&s, 0, sizeof(s));
	s.user = VARDATA_ANY(user);
	s.user_len = VARSIZE_ANY_EXHDR(user);
	if (s.user_len == 0 || s.user_len > CE_SESSION_MAX_USER)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must have 1 to %d bytes", CE_SESSION_MAX_USER)));
	s.data = data_text(PG_GETARG_JSONB_P(1), &s.data_len);
	s.idle_ms = interval_ms(PG_GETARG_INTERVAL_P(2), "idle_timeout");
	life_ms = interval_ms(PG_GETARG_INTERVAL_P(3), "max_lifetime");
	s.created = GetCurrentTimestamp();
	s.deadline = s.created + life_ms * 1000;
	s.version = 1;
	new_session_id(id, &key, &hex, hash);
	s.fingerprint = hash;
	s.id_prefix = id;
	value = session_value(&s, key, &len);
	if (StoreSessionCreate(key, value, len, Min(s.idle_ms, life_ms),
						   SessionUserIndex(s.user, s.user_len), hex,
						   life_ms, &created, &why) != STORE_OK)
		write_failed("create the session", why);
	if (!created)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("a new session id is already in use")));
	SessionSetStatus("CREATED");
	PG_RETURN_TEXT_P(cstring_to_text(id));
}

/* the data of a session as jsonb, for RunInSubtransaction */
typedef struct ParseArgs
{
	const char *data;
	Datum result;
} ParseArgs;

static void
parse_fn(void *arg)
{
	ParseArgs *a = arg;

	a->result = DirectFunctionCall1(jsonb_in, CStringGetDatum(a->data));
}

/*
 * A session's data as jsonb.  Sealed, it is what this extension wrote
 * (authenticated): parsed directly.  Unsealed, anyone who can write to
 * Redis may have written it: checked for the database encoding and parsed
 * in a subtransaction, and refused (NULL, *why) if it does not parse.
 */
static Datum
session_data(const CeSession *s, const char **why)
{
	ParseArgs a;
	ErrorData *edata;

	a.data = s->data;
	if (KeyEncryptionOn())
	{
		parse_fn(&a);
		return a.result;
	}
	if (!pg_verify_mbstr(GetDatabaseEncoding(), s->data, s->data_len, true))
	{
		*why = "the session data is not in the database encoding";
		return (Datum) 0;
	}
	edata = RunInSubtransaction(parse_fn, &a);
	if (edata != NULL)
	{
		FreeErrorData(edata);
		*why = "the session data is not JSON";
		return (Datum) 0;
	}
	return a.result;
}

/*
 * Extend a session's idle timeout if that adds more than an eighth of it
 * (the sliding-expiry rule in the file's opening comment), saying so in
 * the status; a failure to extend it is only reported there.
 */
static void
maybe_touch(const char *key, const LoadedSession *ls)
{
	int64 want = session_ttl(&ls->s, GetCurrentTimestamp());
	const char *why = NULL;

	if (want <= 0 || want - ls->pttl_ms <= ls->s.idle_ms / 8)
		return;
	if (StoreSessionTouch(key, want, &why) != STORE_OK)
		SessionSetStatus("FOUND (idle timeout not extended: %s)", why);
	else
		SessionSetStatus("FOUND (idle timeout extended)");
}

/*
 * cache_session_get(id text) RETURNS jsonb: the session's data, or NULL
 * (absent, expired, Redis unavailable or the value refused: the status
 * says which; with cache_ext.sessions_strict the last two raise).
 */
Datum
cache_session_get(PG_FUNCTION_ARGS)
{
	char *key;
	char *hex;
	uint8 hash[CE_HASH_LEN];
	LoadedSession ls;
	Datum result;
	const char *why = NULL;

	SessionsCheckReady();
	if (!session_key(PG_GETARG_TEXT_PP(0), &key, &hex, hash))
	{
		SessionSetStatus("ABSENT (not a session id)");
		PG_RETURN_NULL();
	}
	load_session(key, hash, &ls);
	if (ls.verdict != SESSION_OK)
	{
		report_unusable(&ls, "read the session");
		PG_RETURN_NULL();
	}
	result = session_data(&ls.s, &why);
	if (why != NULL)
	{
		int64 deleted;

		CacheStatsAdd(CS_CORRUPT, 1);
		(void) StoreSessionDelete(&key, 1, NULL, NULL, 0, &deleted, &why);
		ls.verdict = SESSION_CORRUPT;
		ls.why = "the session data is not valid JSON";
		report_unusable(&ls, "read the session");
		PG_RETURN_NULL();
	}
	SessionSetStatus("FOUND");
	maybe_touch(key, &ls);
	PG_RETURN_DATUM(result);
}

/*
 * cache_session_update(id text, data jsonb, expected_version int) RETURNS
 * int: the new version, or NULL when the session does not exist (or has
 * expired).  With expected_version, the update is made only if the
 * session is at that version: else 40001.  Without it, an update that
 * meets a concurrent one reads again (a few times) and is then applied
 * on top.  Redis unavailable raises.
 */
Datum
cache_session_update(PG_FUNCTION_ARGS)
{
	char *key;
	char *hex;
	uint8 hash[CE_HASH_LEN];
	char *data;
	uint32 data_len;
	bool has_expected = !PG_ARGISNULL(2);
	int32 expected = has_expected ? PG_GETARG_INT32(2) : 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the data of a session must not be null")));
	SessionsCheckReady();
	data = data_text(PG_GETARG_JSONB_P(1), &data_len);
	if (!session_key(PG_GETARG_TEXT_PP(0), &key, &hex, hash))
	{
		SessionSetStatus("ABSENT (not a session id)");
		PG_RETURN_NULL();
	}
	for (int attempt = 0; attempt < SESSION_CAS_ATTEMPTS; attempt++)
	{
		LoadedSession ls;
		CeSession s;
		char *value;
		size_t len;
		int64 ttl;
		StoreCasResult res;
		const char *why = NULL;

		CHECK_FOR_INTERRUPTS();
		load_session(key, hash, &ls);
		if (ls.verdict == SESSION_DOWN)
			write_failed("update the session", ls.why);
		if (ls.verdict != SESSION_OK)
		{
			report_unusable(&ls, "update the session");
			PG_RETURN_NULL();
		}
		if (has_expected && ls.s.version != expected)
		{
			SessionSetStatus("CONFLICT");
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("the session was updated concurrently"),
					 errdetail("The update expected version %d; the session is at version %d.",
							   expected, ls.s.version),
					 errhint("Read the session again (cache_session_get) and retry.")));
		}
		if (ls.s.version == PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the session's version would exceed %d", PG_INT32_MAX)));
		s = ls.s;
		s.version++;
		s.data = data;
		s.data_len = data_len;
		ttl = session_ttl(&s, GetCurrentTimestamp());
		if (ttl <= 0)
		{
			SessionSetStatus("EXPIRED");
			PG_RETURN_NULL();
		}
		value = session_value(&s, key, &len);
		if (StoreSessionReplace(key, ls.raw, ls.raw_len, value, len, ttl,
								&res, &why) != STORE_OK)
			write_failed("update the session", why);
		if (res == STORE_CAS_DONE)
		{
			SessionSetStatus("UPDATED");
			PG_RETURN_INT32(s.version);
		}
		if (res == STORE_CAS_GONE)
		{
			SessionSetStatus("ABSENT");
			PG_RETURN_NULL();
		}
		/* changed since it was read: with expected_version, that loses */
		if (has_expected)
			break;
		cas_backoff(attempt);
	}
	SessionSetStatus("CONFLICT");
	if (has_expected)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the session was updated concurrently"),
				 errdetail("Another update of version %d was applied first.", expected),
				 errhint("Read the session again (cache_session_get) and retry.")));
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the session was updated concurrently"),
			 errdetail("Other updates were applied while this one was being made."),
			 errhint("Retry the update.")));
	PG_RETURN_NULL(); /* not reached */
}

/*
 * cache_session_rotate(id text) RETURNS text: a new id for the session
 * (its data, version, creation and deadline kept), the old id dead; NULL
 * when there is no such session.  Raises when Redis is unavailable.
 */
Datum
cache_session_rotate(PG_FUNCTION_ARGS)
{
	char *key;
	char *hex;
	uint8 hash[CE_HASH_LEN];

	SessionsCheckReady();
	if (!session_key(PG_GETARG_TEXT_PP(0), &key, &hex, hash))
	{
		SessionSetStatus("ABSENT (not a session id)");
		PG_RETURN_NULL();
	}
	for (int attempt = 0; attempt < SESSION_CAS_ATTEMPTS; attempt++)
	{
		LoadedSession ls;
		CeSession s;
		char id[CE_SESSION_ID_LEN + 1];
		char *nkey;
		char *nhex;
		uint8 nhash[CE_HASH_LEN];
		char *value;
		size_t len;
		int64 ttl;
		TimestampTz now;
		StoreCasResult res;
		const char *why = NULL;

		CHECK_FOR_INTERRUPTS();
		load_session(key, hash, &ls);
		if (ls.verdict == SESSION_DOWN)
			write_failed("rotate the session", ls.why);
		if (ls.verdict != SESSION_OK)
		{
			report_unusable(&ls, "rotate the session");
			PG_RETURN_NULL();
		}
		new_session_id(id, &nkey, &nhex, nhash);
		s = ls.s;
		s.fingerprint = nhash;
		s.id_prefix = id;
		now = GetCurrentTimestamp();
		ttl = session_ttl(&s, now);
		if (ttl <= 0)
		{
			SessionSetStatus("EXPIRED");
			PG_RETURN_NULL();
		}
		value = session_value(&s, nkey, &len);
		if (StoreSessionRotate(key, ls.raw, ls.raw_len, nkey, value, len, ttl,
							   SessionUserIndex(s.user, s.user_len), hex, nhex,
							   (s.deadline - now) / 1000, &res, &why) != STORE_OK)
			write_failed("rotate the session", why);
		if (res == STORE_CAS_DONE)
		{
			SessionSetStatus("ROTATED");
			PG_RETURN_TEXT_P(cstring_to_text(id));
		}
		if (res == STORE_CAS_GONE)
		{
			SessionSetStatus("ABSENT");
			PG_RETURN_NULL();
		}
		if (res == STORE_CAS_TAKEN)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("a new session id is already in use")));
		cas_backoff(attempt);
	}
	SessionSetStatus("CONFLICT");
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the session was updated concurrently"),
			 errhint("Retry the rotation.")));
	PG_RETURN_NULL(); /* not reached */
}

/*
 * cache_session_destroy(id text) RETURNS boolean: whether a session was
 * deleted.  Raises when Redis is unavailable: a logout that could not be
 * made must not look like one that found nothing to do.
 */
Datum
cache_session_destroy(PG_FUNCTION_ARGS)
{
	char *key;
	char *hex;
	uint8 hash[CE_HASH_LEN];
	int64 deleted = 0;
	const char *why = NULL;

	SessionsCheckReady();
	if (!session_key(PG_GETARG_TEXT_PP(0), &key, &hex, hash))
	{
		SessionSetStatus("ABSENT (not a session id)");
		PG_RETURN_BOOL(false);
	}
	if (StoreSessionDelete(&key, 1, NULL, NULL, 0, &deleted, &why) != STORE_OK)
		write_failed("destroy the session", why);
	SessionSetStatus(deleted > 0 ? "DESTROYED" : "ABSENT");
	PG_RETURN_BOOL(deleted > 0);
}

/* cache_session_status() RETURNS text: what the last session call did. */
Datum
cache_session_status(PG_FUNCTION_ARGS)
{
	if (last_status[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(last_status));
}

/* cache_ext.sessions_strict, cache_ext.sessions_allow_unsealed. */
void
SessionsDefineGucs(void)
{
	DefineCustomBoolVariable("cache_ext.sessions_strict",
							 "Makes cache_session_get raise an error when Redis is unavailable or a session is refused.",
							 "Off: it returns NULL and cache_session_status() says why.",
							 &cache_ext_sessions_strict,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("cache_ext.sessions_allow_unsealed",
							 "Allows sessions without cache_ext.encryption_key_file, stored in Redis unencrypted.",
							 "Off: without an encryption key every session function raises an error.",
							 &sessions_allow_unsealed,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}
