/*-------------------------------------------------------------------------
 *
 * triggers.c
 *	  The triggers of ours: installing, checking and dropping them on a
 *	  tracked relation and its partitions and children, and the trigger
 *	  function.
 *
 * Triggers: statement-level AFTER INSERT/UPDATE/DELETE and TRUNCATE
 * triggers created ENABLE ALWAYS, and a row-level one, which fires during
 * logical-replication apply and, on a partition or inheritance child,
 * always (a statement on the parent fires only the child's row triggers);
 * its arguments name the key columns.  Catalog changes run as SQL through
 * SPI with every name schema-qualified and quoted.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/genam.h"
#include "catalog/pg_depend.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_control.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "common/controldata_utils.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/snapmgr.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/datum.h"
#include "utils/uuid.h"
#include "utils/resowner.h"

#include "cache_ext.h"
#include "invalidate.h"
#include "outbox.h"
#include "keys.h"
#include "inval_internal.h"

char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* Whether relid has a trigger named name on our function; *clone: cloned from a parent. */
bool
our_trigger(Oid relid, const char *name, bool *clone)
{
	Relation rel = RelationIdGetRelation(relid);
	Oid func = get_trigger_func();
	bool found = false;

	*clone = false;
	if (rel == NULL)
		return false;
	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger *tg = &rel->trigdesc->triggers[i];

		if (strcmp(tg->tgname, name) == 0 && tg->tgfoid == func)
		{
			found = true;
			*clone = tg->tgisclone;
		}
	}
	RelationClose(rel);
	return found;
}

/* tgenabled of relid's trigger named name, or '\0' when there is none */
char
trigger_state(Oid relid, const char *name, bool *ours)
{
	Relation rel = RelationIdGetRelation(relid);
	char state = '\0';

	*ours = false;
	if (rel == NULL)
		return '\0';
	if (rel->trigdesc)
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger *tg = &rel->trigdesc->triggers[i];

			if (strcmp(tg->tgname, name) == 0)
			{
				state = tg->tgenabled;
				*ours = tg->tgfoid == get_trigger_func();
			}
		}
	RelationClose(rel);
	return state;
}

void
spi_exec(const char *sql)
{
	int rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

/*
 * relid's trigger name has exactly the arguments args (a List of char *)
 * and fires unconditionally, as ensure_trigger makes it.
 */
static bool
trigger_args_are(Oid relid, const char *name, List *args)
{
	Relation rel = RelationIdGetRelation(relid);
	bool same = false;

	if (rel == NULL)
		return false;
	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger *tg = &rel->trigdesc->triggers[i];

		if (strcmp(tg->tgname, name) != 0)
			continue;
		same = tg->tgnargs == list_length(args) && fires_unconditionally(tg);
		for (int k = 0; same && k < tg->tgnargs; k++)
			same = strcmp(tg->tgargs[k], (char *) list_nth(args, k)) == 0;
	}
	RelationClose(rel);
	return same;
}

/*
 * Create trigger name (timing, events, level, args) on relid unless it
 * exists with those arguments, and make it fire as enabled says ('A'
 * always, 'R' replica only).
 */
static void
ensure_trigger(Oid relid, const char *name, const char *timing,
			   const char *events, const char *level, char enabled, List *args)
{
	bool ours;
	char state = trigger_state(relid, name, &ours);
	char *rel = qualified_name(relid);

	if (state != '\0' && !ours)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table \"%s\" already has a trigger named \"%s\" that cache_ext did not create",
						get_rel_name(relid), name),
				 errhint("Rename or drop that trigger, then track the table again.")));
	if (state == '\0' || !trigger_args_are(relid, name, args))
	{
		Oid func = get_trigger_func();
		StringInfoData a;
		ListCell *lc;

		initStringInfo(&a);
		foreach(lc, args)
			appendStringInfo(&a, "%s%s", a.len ? ", " : "",
							 quote_literal_cstr((char *) lfirst(lc)));
		spi_exec(psprintf("CREATE OR REPLACE TRIGGER %s %s %s ON %s FOR EACH %s EXECUTE FUNCTION %s(%s)",
						  quote_identifier(name), timing,
						  events, rel, level,
						  quote_qualified_identifier(get_namespace_name(get_func_namespace(func)),
													 "cache_ext_trigger"),
						  a.data));
		CommandCounterIncrement();
		state = trigger_state(relid, name, &ours);
	}
	if (state != enabled)
	{
		spi_exec(psprintf("ALTER TABLE %s ENABLE %s TRIGGER %s", rel,
						  enabled == TRIGGER_FIRES_ALWAYS ? "ALWAYS" : "REPLICA",
						  quote_identifier(name)));
		CommandCounterIncrement();
	}
}

/* Drop relid's trigger name if cache_ext made it. */
void
drop_trigger(Oid relid, const char *name)
{
	bool ours;

	if (trigger_state(relid, name, &ours) != '\0' && ours)
	{
		spi_exec(psprintf("DROP TRIGGER %s ON %s", quote_identifier(name),
						  qualified_name(relid)));
		CommandCounterIncrement();
	}
}

/*
 * The triggers of one relation.  A partitioned table gets a row-level
 * trigger, which PostgreSQL clones onto every partition, present and
 * future; TRUNCATE triggers are not cloned, so every partition gets its
 * own.  A table gets statement-level triggers, plus a row-level one that
 * fires only during logical-replication apply (which fires no statement
 * triggers).
 */
void
install_triggers(Oid relid, bool partition_of_tracked, List *keys)
{
	char relkind = get_rel_relkind(relid);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (relkind == RELKIND_PARTITIONED_TABLE)
	{
		List *all = find_all_inheritors(relid, NoLock, NULL);
		ListCell *lc;

		/* its arguments, the key columns, are cloned with it */
		if (!partition_of_tracked)
			ensure_trigger(relid, "cache_ext_row", "AFTER",
						   "INSERT OR UPDATE OR DELETE", "ROW", 'A', keys);
		foreach(lc, all)
			ensure_trigger(lfirst_oid(lc), "cache_ext_truncate", "AFTER",
						   "TRUNCATE", "STATEMENT", 'A', NIL);
	}
	else if (relkind == RELKIND_RELATION)
	{
		if (!partition_of_tracked)
		{
			/* notes the write before the statement's first row */
			ensure_trigger(relid, "cache_ext_before", "BEFORE",
						   "INSERT OR UPDATE OR DELETE", "STATEMENT", 'A', NIL);
			ensure_trigger(relid, "cache_ext_stmt", "AFTER",
						   "INSERT OR UPDATE OR DELETE", "STATEMENT", 'A', NIL);
			/*
			 * A row-level one for logical-replication apply; on a partition
			 * or inheritance child it always fires: a statement on its
			 * parent (untracked, or tracked later) fires no statement
			 * trigger of the child, only its row triggers.
			 */
			ensure_trigger(relid, "cache_ext_apply", "AFTER",
						   "INSERT OR UPDATE OR DELETE", "ROW",
						   (get_rel_relispartition(relid) || direct_parents(relid) != NIL) ?
							   'A' :
							   'R',
						   NIL);
			/* key-level tracking: the values of the key columns of each row */
			if (keys != NIL)
				ensure_trigger(relid, "cache_ext_keys", "AFTER",
							   "INSERT OR UPDATE OR DELETE", "ROW", 'A', keys);
			else
				drop_trigger(relid, "cache_ext_keys");
		}
		ensure_trigger(relid, "cache_ext_truncate", "AFTER", "TRUNCATE", "STATEMENT", 'A', NIL);
	}
	SPI_finish();
}

/* The key columns relid's tracked ancestor is tracked by (for new children). */
List *
inherited_keys(Oid relid)
{
	RelInfo *ri = get_rel_info(relid);
	List *keys = NIL;

	for (int i = 0; i < ri->nkeys; i++)
		keys = lappend(keys, pstrdup(NameStr(ri->keys[i])));
	return keys;
}

void
check_trackable(Oid relid, bool for_untrack)
{
	char relkind = get_rel_relkind(relid);
	const char *name = get_rel_name(relid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (relkind == RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot track view \"%s\"", name),
				 errhint("Track the tables the view reads: queries through the view depend on them.")));
	if (relkind == RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot track foreign table \"%s\"", name),
				 errdetail("Its rows change on another server, where cache_ext cannot see the writes."),
				 errhint("Results that read it are cached under their TTL only; call cache_invalidate() after changing it.")));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", name)));
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP && !for_untrack)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot track temporary table \"%s\"", name),
				 errdetail("Queries that read temporary tables are never cached.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind), name);
}

/*
 * Validate key_columns for relid: existing user columns of a type whose
 * equality cache_ext can key (see InvalKeyTypeSupported), no duplicates.
 */
List *
check_key_columns(Oid relid, ArrayType *arr)
{
	Datum *elems;
	bool *nulls;
	int n;
	List *keys = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		return NIL;
	if (n > INVAL_MAX_KEY_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("at most %d key columns may be tracked, not %d",
						INVAL_MAX_KEY_COLUMNS, n)));
	for (int i = 0; i < n; i++)
	{
		char *col;
		AttrNumber attno;
		Oid typid;
		Oid collid;
		int32 typmod;
		ListCell *lc;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key_columns must not contain NULL")));
		col = TextDatumGetCString(elems[i]);
		attno = get_attnum(relid, col);
		if (attno == InvalidAttrNumber || attno < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							col, get_rel_name(relid))));
		foreach(lc, keys)
			if (strcmp((char *) lfirst(lc), col) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("key column \"%s\" is given twice", col)));
		get_atttypetypmodcoll(relid, attno, &typid, &typmod, &collid);
		if (!InvalKeyTypeSupported(typid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("key column \"%s\" has type %s, which cache_ext cannot track by value",
							col, format_type_be(typid)),
					 errhint("Key columns must be of type smallint, integer, bigint, text, varchar or uuid. Track the table without key_columns instead.")));
		if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("key column \"%s\" has a nondeterministic collation", col),
					 errdetail("Values that are equal under it may differ byte for byte.")));
		if (strlen(col) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("key column name \"%s\" is too long", col)));
		keys = lappend(keys, col);
	}
	return keys;
}

PG_FUNCTION_INFO_V1(cache_ext_trigger);

Datum
cache_ext_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid relid;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cache_ext_trigger() must be called as a trigger")));
	relid = RelationGetRelid(td->tg_relation);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event) && td->tg_trigger->tgnargs > 0)
		touch_row_keys(td, relid);
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		touch_relation(relid, true);
		return PointerGetDatum(NULL);
	}
	touch_relation_once(relid);
	return PointerGetDatum(NULL);
}
