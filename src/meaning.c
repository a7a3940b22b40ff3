/*-------------------------------------------------------------------------
 *
 * meaning.c
 *	  What a statement's plan was made from, for serving statements
 *	  prepared before they run under cache rules (docs/rules.md).
 *
 * A rule serves a statement through the call pipeline, which parses the
 * statement's text again, now.  For a statement parsed in the message that
 * runs it nothing can have changed in between; a statement prepared earlier
 * (PREPARE, the extended protocol's statements, a cursor) may have been
 * parsed under other settings, catalogs or role.  It is served only when
 * the pipeline's parse now is the query its plan was made from:
 *
 *	- the planner hook (rules_exec.c) records, for each top-level plan of a
 *	  statement with a rule, the hash of the plan (its whole nodeToString
 *	  text, which a cached plan's copy keeps) and the meaning of the query
 *	  it was planned from (MeaningOfQuery);
 *	- when the statement starts, its plan's hash finds that meaning, and
 *	  the pipeline compares it with the meaning of its own parse.
 *
 * The meaning of a query is the hash of its nodeToString text without the
 * location fields (what equal() ignores too): every resolved object,
 * constant, type, collation and row-level security qual is in it.  Two
 * plans whose texts are equal are the same plan, whatever query each came
 * from, so a plan maps to one meaning as good as another.
 *
 * State: two backend-local hashes of plan hash to meaning (the recent
 * and the older), in TopMemoryContext.  A plan is recorded in the recent
 * one; when that holds MAX_PLANS it becomes the older one and the older
 * one is dropped.  A plan found in the older one moves to the recent one,
 * so that a generic plan in use is never forgotten for the one-off plans
 * recorded since.  A plan not found runs directly.  A third hash,
 * found_plans, keeps the meanings found by plan address while the plan's
 * memory lives (see FoundPlan).  No locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/nodes.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "keys.h"
#include "meaning.h"

#define MAX_PLANS 2048

typedef struct PlanMeaning
{
	uint8 plan[CE_HASH_LEN]; /* the key: hash of the plan's text */
	uint8 meaning[CE_HASH_LEN];
} PlanMeaning;

static HTAB *recent = NULL;
static HTAB *older = NULL;

/* The fields nodeToString writes that say where, not what. */
static const char *const location_fields[] = {
	" :location ", " :stmt_location ", " :stmt_len "};

/*
 * Remove the location fields' values from a nodeToString text, in place.
 * A name of the tree ending in " :location" (its spaces are written
 * escaped, "\ :location") may be cut too, but what follows it is the next
 * field's name, never digits, and the names are those of the same text in
 * both parses: nothing that changes what the query does is removed.
 */
static void
strip_locations(char *s)
{
	char *out = s;
	const char *in = s;

	while (*in)
	{
		bool skipped = false;

		if (*in == ' ')
		{
			for (int i = 0; i < lengthof(location_fields); i++)
			{
				size_t n = strlen(location_fields[i]);

				if (strncmp(in, location_fields[i], n) == 0)
				{
					in += n;
					if (*in == '-')
						in++;
					while (*in >= '0' && *in <= '9')
						in++;
					skipped = true;
					break;
				}
			}
		}
		if (!skipped)
			*out++ = *in++;
	}
	*out = '\0';
}

static void
hash_text(const char *what, char *text, uint8 *hash)
{
	StringInfoData m;

	initStringInfo(&m);
	KeyAddString(&m, what);
	KeyAddString(&m, text);
	KeyHash(&m, hash);
	pfree(m.data);
}

/* The meaning of a (rewritten) query tree: see the banner. */
void
MeaningOfQuery(Node *query, uint8 *hash)
{
	char *text = nodeToString(query);

	strip_locations(text);
	hash_text("cache_ext query meaning v1", text, hash);
	pfree(text);
}

/*
 * A meaning planned under settings (settings_key's digest): the planner
 * folds functions whose results depend on settings (float output under
 * extra_float_digits) and parses the bodies of the SQL functions it
 * inlines (their literals under TimeZone, DateStyle) with the settings of
 * that moment, and PostgreSQL does not plan again when they change.
 */
void
MeaningUnderSettings(const uint8 *meaning, const uint8 *settings, uint8 *out)
{
	StringInfoData m;

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext meaning under settings v1");
	KeyAddField(&m, meaning, CE_HASH_LEN);
	KeyAddField(&m, settings, CE_HASH_LEN);
	KeyHash(&m, out);
	pfree(m.data);
}

static void
plan_hash(PlannedStmt *stmt, uint8 *hash)
{
	char *text = nodeToString(stmt);

	hash_text("cache_ext plan v1", text, hash);
	pfree(text);
}

static HTAB *
new_table(void)
{
	HASHCTL ctl;

	ctl.keysize = CE_HASH_LEN;
	ctl.entrysize = sizeof(PlanMeaning);
	ctl.hcxt = TopMemoryContext;
	return hash_create("cache_ext plan meanings", 64, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Enter plan's meaning into the recent table, rotating it when full. */
static void
remember(const uint8 *plan, const uint8 *meaning)
{
	PlanMeaning *e;
	bool found;

	if (recent == NULL)
		recent = new_table();
	else if (hash_get_num_entries(recent) >= MAX_PLANS)
	{
		if (older != NULL)
			hash_destroy(older);
		older = recent;
		recent = new_table();
	}
	e = hash_search(recent, plan, HASH_ENTER, &found);
	memcpy(e->meaning, meaning, CE_HASH_LEN);
}

/* Record that stmt was planned from a query whose meaning is meaning. */
void
PlanMeaningRecord(PlannedStmt *stmt, const uint8 *meaning)
{
	uint8 key[CE_HASH_LEN];

	plan_hash(stmt, key);
	remember(key, meaning);
}

/*
 * Meanings found, by the address of the plan: a plan never changes while
 * the memory context holding it lives, and a callback on that context
 * forgets the plan when it goes.  This spares the plan's text and hash on
 * each execution of a cached plan.
 */
typedef struct FoundPlan
{
	PlannedStmt *stmt; /* the key */
	uint8 meaning[CE_HASH_LEN];
} FoundPlan;

typedef struct FoundCallback
{
	MemoryContextCallback cb;
	PlannedStmt *stmt;
} FoundCallback;

static HTAB *found_plans = NULL;

static void
forget_found(void *arg)
{
	FoundCallback *f = (FoundCallback *) arg;

	if (found_plans != NULL)
		hash_search(found_plans, &f->stmt, HASH_REMOVE, NULL);
}

static void
note_found(PlannedStmt *stmt, const uint8 *meaning)
{
	MemoryContext cxt = GetMemoryChunkContext(stmt);
	FoundPlan *e;
	FoundCallback *f;
	bool found;

	if (found_plans == NULL)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(PlannedStmt *);
		ctl.entrysize = sizeof(FoundPlan);
		ctl.hcxt = TopMemoryContext;
		found_plans = hash_create("cache_ext found plan meanings", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	f = MemoryContextAlloc(cxt, sizeof(FoundCallback));
	e = hash_search(found_plans, &stmt, HASH_ENTER, &found);
	memcpy(e->meaning, meaning, CE_HASH_LEN);
	if (found)
	{
		pfree(f);
		return;
	}
	f->stmt = stmt;
	f->cb.func = forget_found;
	f->cb.arg = f;
	MemoryContextRegisterResetCallback(cxt, &f->cb);
}

/* The meaning stmt was planned from, into meaning; false when unknown. */
bool
PlanMeaningFind(PlannedStmt *stmt, uint8 *meaning)
{
	PlanMeaning *e = NULL;
	uint8 key[CE_HASH_LEN];

	if (recent == NULL)
		return false;
	if (found_plans != NULL)
	{
		FoundPlan *f = hash_search(found_plans, &stmt, HASH_FIND, NULL);

		if (f != NULL)
		{
			memcpy(meaning, f->meaning, CE_HASH_LEN);
			return true;
		}
	}
	plan_hash(stmt, key);
	e = hash_search(recent, key, HASH_FIND, NULL);
	if (e == NULL && older != NULL)
	{
		e = hash_search(older, key, HASH_FIND, NULL);
		if (e != NULL)
		{
			memcpy(meaning, e->meaning, CE_HASH_LEN);
			remember(key, meaning);
			note_found(stmt, meaning);
			return true;
		}
	}
	if (e == NULL)
		return false;
	memcpy(meaning, e->meaning, CE_HASH_LEN);
	note_found(stmt, meaning);
	return true;
}
