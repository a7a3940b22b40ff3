/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  The ProcessUtility hook: what DDL changes, as far as cached results go.
 *
 * The hook classifies each utility statement without raising (names are
 * looked up with missing_ok): ALTER TABLE and friends bump the relations,
 * VACUUM FULL and CLUSTER what they rewrite, GRANT/REVOKE, ALTER DOMAIN /
 * TEXT SEARCH / COLLATION, ownership changes the database, role and
 * membership changes the server generation of every Redis target.  Its own
 * catalog work (installing triggers on a new partition, ...) runs in a
 * subtransaction (run_guarded): a failure there warns and bumps more, and
 * never fails the user's statement.  docs/invalidation.md has the table.
 *
 * State: the previous hook (set once, from _PG_init).
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
#include "refresh.h"
#include "subxact.h"

static ProcessUtility_hook_type prev_utility_hook = NULL;

/*
 * Whether the row type of relid (or its array type) is the type of a
 * column of some relation: ALTER TABLE relid then changes what those
 * columns' values show (a column dropped and added again reads NULL), so
 * results over other tables change.  Found through pg_depend (a column
 * depends on its type); never raises.
 */
static bool
rowtype_is_used(Oid relid)
{
	Oid types[2];
	bool used = false;
	Relation dep;

	types[0] = get_rel_type_id(relid);
	types[1] = OidIsValid(types[0]) ? get_array_type(types[0]) : InvalidOid;
	if (!OidIsValid(types[0]))
		return false;
	dep = table_open(DependRelationId, AccessShareLock);
	for (int i = 0; i < 2 && !used; i++)
	{
		ScanKeyData key[2];
		SysScanDesc scan;
		HeapTuple tup;

		if (!OidIsValid(types[i]))
			continue;
		ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(TypeRelationId));
		ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(types[i]));
		scan = systable_beginscan(dep, DependReferenceIndexId, true, NULL, 2, key);
		while (!used && (tup = systable_getnext(scan)) != NULL)
		{
			Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

			/*
			 * A column of a relation, or a domain or another type over it
			 * (not the row type's own array type, which always exists).
			 */
			if (d->deptype == DEPENDENCY_INTERNAL ||
				(d->classid == TypeRelationId && d->objid == types[1]))
				continue;
			if ((d->classid == RelationRelationId && d->objsubid > 0) ||
				d->classid == TypeRelationId)
				used = true;
		}
		systable_endscan(scan);
	}
	table_close(dep, AccessShareLock);
	return used;
}

/*
 * The relation rv names, or InvalidOid.  Never raises (the statement
 * reports its own errors, in its own order): no lock, no permission check
 * on the schema; an unqualified name is looked up as the statement will
 * look it up, in the caller's search_path.
 */
static Oid
rv_relid(RangeVar *rv)
{
	Oid nsp;

	if (rv == NULL || rv->relname == NULL)
		return InvalidOid;
	if (rv->catalogname != NULL)
	{
		char *db = get_database_name(MyDatabaseId);

		if (db == NULL || strcmp(rv->catalogname, db) != 0)
			return InvalidOid;
	}
	if (rv->schemaname == NULL)
		return RelnameGetRelid(rv->relname);
	nsp = get_namespace_oid(rv->schemaname, true);
	return OidIsValid(nsp) ? get_relname_relid(rv->relname, nsp) : InvalidOid;
}

/* Whether some ancestor of relid is tracked in its own right. */
static bool
has_tracked_ancestor(Oid relid)
{
	RelInfo *ri = get_rel_info(relid);

	return ri->nbump > 1;
}

/*
 * Run fn(arg) in a subtransaction.  An error in it rolls the subtransaction
 * back and becomes a WARNING naming what (a phrase after "could not"):
 * work cache_ext adds to a user's statement must never make it fail.
 * Query cancel and the like are re-raised.  Returns whether fn completed.
 */
bool
run_guarded(GuardedFn fn, void *arg, const char *what)
{
	ErrorData *edata = RunInSubtransaction(fn, arg);

	if (edata == NULL)
		return true;
	if (edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
		ReThrowError(edata);
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("cache_ext could not %s: %s", what, edata->message),
			 errdetail("The statement went ahead; cache_ext invalidated a wider scope instead.")));
	FreeErrorData(edata);
	return false;
}

/*
 * What a utility statement changes, as far as cached results go (see
 * docs/invalidation.md for the table).  Filled by classify_utility before
 * the statement runs; rewrite statements (VACUUM FULL, CLUSTER) are looked
 * at again after it, since they commit on their own.
 */
typedef struct UtilityEffects
{
	List *rels;			  /* relations whose rows or meaning change */
	List *keys;			  /* their generation keys as they stood before */
	List *new_children;	  /* RangeVars: attached partitions, new children */
	Oid attach_parent;	  /* ATTACH PARTITION: the parent ... */
	Oid attach_part;	  /* ... and the partition */
	bool database;		  /* every result of this database */
	bool server;		  /* every result of this server (shared catalogs) */
	VacuumStmt *vacuum;	  /* VACUUM: rows move if FULL */
	ClusterStmt *cluster; /* CLUSTER: rows move */
	char *finish_gid;	  /* COMMIT PREPARED */
} UtilityEffects;

/* GRANT/REVOKE on these changes what roles may do in every database. */
static bool
objtype_is_shared(ObjectType t)
{
	return t == OBJECT_DATABASE || t == OBJECT_TABLESPACE ||
		t == OBJECT_PARAMETER_ACL;
}

/*
 * GRANT/REVOKE on tables that are all temporary (review15b F2): no cached
 * result reads a temporary table (a call that does bypasses), and no
 * other session can read one, so nothing is invalidated.  Any role may
 * create a temporary table: without this, any role could empty the cache.
 */
static bool
grant_on_temp_only(GrantStmt *g)
{
	ListCell *lc;

	if (g->targtype != ACL_TARGET_OBJECT || g->objtype != OBJECT_TABLE ||
		g->objects == NIL)
		return false;
	foreach(lc, g->objects)
	{
		Oid relid = rv_relid(lfirst_node(RangeVar, lc));

		if (!OidIsValid(relid) || !isAnyTempNamespace(get_rel_namespace(relid)))
			return false;
	}
	return true;
}

/*
 * Classify parsetree into e.  Looks names up only with rv_relid, so it
 * never raises.  PREPARE TRANSACTION's GID is remembered here.
 *
 * Long because: one case per kind of utility statement, in the order of
 * the table in docs/invalidation.md; split, the table would be scattered.
 */
static void
classify_utility(Node *parsetree, UtilityEffects *e)
{
	ListCell *lc;

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			{
				AlterTableStmt *s = (AlterTableStmt *) parsetree;
				Oid relid = rv_relid(s->relation);

				e->rels = lappend_oid(e->rels, relid);
				foreach(lc, s->cmds)
				{
					AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

					if (cmd->subtype == AT_AttachPartition ||
						cmd->subtype == AT_DetachPartition ||
						cmd->subtype == AT_DetachPartitionFinalize)
					{
						PartitionCmd *pc = (PartitionCmd *) cmd->def;
						Oid part = rv_relid(pc->name);

						e->rels = lappend_oid(e->rels, part);
						if (cmd->subtype == AT_AttachPartition)
						{
							e->new_children = lappend(e->new_children, pc->name);
							e->attach_parent = relid;
							e->attach_part = part;
						}
					}
					else if (cmd->subtype == AT_AddInherit ||
							 cmd->subtype == AT_DropInherit)
					{
						e->rels = lappend_oid(e->rels, rv_relid((RangeVar *) cmd->def));
						if (cmd->subtype == AT_AddInherit)
							e->new_children = lappend(e->new_children, s->relation);
					}
				}
				/* ALTER TYPE ... ATTRIBUTE changes the rows of every table using it */
				if (s->objtype == OBJECT_TYPE)
					e->database = true;
				/* ... and so does a table's, when its row type is a column type */
				else if (OidIsValid(relid) && rowtype_is_used(relid))
					e->database = true;
				break;
			}
		case T_AlterEnumStmt: /* RENAME VALUE changes what rows show */
		case T_AlterTypeStmt:
		case T_AlterDomainStmt:			 /* constraints, NOT NULL, defaults */
		case T_AlterTSConfigurationStmt: /* what to_tsvector and @@ return */
		case T_AlterTSDictionaryStmt:
		case T_AlterCollationStmt: /* REFRESH VERSION: the collation changed */
		case T_AlterOwnerStmt:	   /* owners hold privileges, RLS exempts them */
		case T_ReassignOwnedStmt:
		case T_DropOwnedStmt: /* revokes the role's privileges */
			e->database = true;
			break;
		case T_GrantStmt:
			if (objtype_is_shared(((GrantStmt *) parsetree)->objtype))
				e->server = true;
			else if (!grant_on_temp_only((GrantStmt *) parsetree))
				e->database = true;
			break;
		case T_GrantRoleStmt: /* memberships: pg_has_role, policies, SET ROLE */
		case T_DropRoleStmt:

			/*
			 * A database created with a dropped one's OID (CREATE DATABASE
			 * ... OID n, or OID reuse) from the same template would have
			 * every key name of the dropped one: both ends bump.
			 */
		case T_CreatedbStmt:
		case T_DropdbStmt:
			e->server = true;
			break;
		case T_CreateRoleStmt:
			/* a new role matters only through the memberships it gets */
			foreach(lc, ((CreateRoleStmt *) parsetree)->options)
			{
				const char *opt = lfirst_node(DefElem, lc)->defname;

				if (strcmp(opt, "addroleto") == 0 || strcmp(opt, "rolemembers") == 0 ||
					strcmp(opt, "adminmembers") == 0)
					e->server = true;
			}
			break;
		case T_AlterRoleStmt:
			/* BYPASSRLS, SUPERUSER, INHERIT, members...; not the password */
			foreach(lc, ((AlterRoleStmt *) parsetree)->options)
			{
				const char *opt = lfirst_node(DefElem, lc)->defname;

				if (strcmp(opt, "password") != 0 && strcmp(opt, "validUntil") != 0 &&
					strcmp(opt, "connectionlimit") != 0)
					e->server = true;
			}
			break;
		case T_RenameStmt:
			{
				RenameStmt *r = (RenameStmt *) parsetree;

				/* a composite type's attribute appears in results (row_to_json) */
				if (r->renameType == OBJECT_ATTRIBUTE)
					e->database = true;
				else if (r->renameType == OBJECT_ROLE)
					e->server = true;
				else
					e->rels = lappend_oid(e->rels, rv_relid(r->relation));
				break;
			}
		case T_RefreshMatViewStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((RefreshMatViewStmt *) parsetree)->relation));
			break;
		case T_CreatePolicyStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((CreatePolicyStmt *) parsetree)->table));
			break;
		case T_AlterPolicyStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((AlterPolicyStmt *) parsetree)->table));
			break;
		case T_RuleStmt:
			e->rels = lappend_oid(e->rels, rv_relid(((RuleStmt *) parsetree)->relation));
			break;
		case T_DropStmt:
			{
				DropStmt *s = (DropStmt *) parsetree;

				if (s->removeType == OBJECT_POLICY || s->removeType == OBJECT_RULE)
				{
					foreach(lc, s->objects)
					{
						List *names = list_copy(lfirst(lc));

						/* the last name is the policy's or rule's */
						names = list_truncate(names, list_length(names) - 1);
						if (names != NIL)
							e->rels = lappend_oid(e->rels, rv_relid(makeRangeVarFromNameList(names)));
					}
				}
				break;
			}
		case T_CreateStmt:
			{
				CreateStmt *s = (CreateStmt *) parsetree;

				if (s->partbound != NULL || s->inhRelations != NIL)
					e->new_children = lappend(e->new_children, s->relation);
				foreach(lc, s->inhRelations)
					e->rels = lappend_oid(e->rels, rv_relid(lfirst_node(RangeVar, lc)));
				break;
			}
		case T_VacuumStmt:
			if (((VacuumStmt *) parsetree)->is_vacuumcmd)
				e->vacuum = (VacuumStmt *) parsetree;
			break;
		case T_ClusterStmt:
			e->cluster = (ClusterStmt *) parsetree;
			break;
		case T_TransactionStmt:
			{
				TransactionStmt *s = (TransactionStmt *) parsetree;

				if (s->kind == TRANS_STMT_PREPARE)
				{
					XactSetPrepareGid(s->gid);
				}
				else if (s->kind == TRANS_STMT_COMMIT_PREPARED)
					e->finish_gid = pstrdup(s->gid);
				break;
			}
		default:
			break;
	}
}

/*
 * VACUUM FULL and CLUSTER rewrite tables: rows move (ctid, physical order
 * of an unordered scan).  The relations named, or every table of the
 * database when none is.  Looked at after the statement ran (its options
 * were valid then); nothing for plain VACUUM, which moves no live row.
 */
static void
rewrite_effects(UtilityEffects *e)
{
	ListCell *lc;

	if (e->vacuum != NULL)
	{
		bool full = false;

		foreach(lc, e->vacuum->options)
		{
			DefElem *opt = lfirst_node(DefElem, lc);

			if (strcmp(opt->defname, "full") == 0)
				full = opt->arg == NULL || defGetBoolean(opt);
		}
		if (!full)
			return;
		if (e->vacuum->rels == NIL)
			e->database = true;
		foreach(lc, e->vacuum->rels)
		{
			VacuumRelation *vr = lfirst_node(VacuumRelation, lc);
			Oid relid = OidIsValid(vr->oid) ? vr->oid : rv_relid(vr->relation);

			if (OidIsValid(relid))
				e->rels = lappend_oid(e->rels, relid);
			else
				e->database = true;
		}
	}
	if (e->cluster != NULL)
	{
		Oid relid = rv_relid(e->cluster->relation);

		if (OidIsValid(relid))
			e->rels = lappend_oid(e->rels, relid);
		else
			e->database = true;
	}
}

/*
 * ATTACH PARTITION onto a parent whose cache_ext_row trigger PostgreSQL
 * will clone onto the new partition and everything under it: a tracked
 * partitioned table in that tree has a cache_ext_row of its own, which
 * would make the clone fail with "already exists".  The clone replaces
 * it (the parent's generation and key columns stand for the tree from
 * now on), so drop ours first; rolled back with the statement if it
 * fails.  Only where the caller owns the partition, as ATTACH requires.
 */
static void
prepare_attach(void *arg)
{
	UtilityEffects *e = arg;
	List *all;
	ListCell *lc;
	bool clone;

	if (get_rel_relkind(e->attach_parent) != RELKIND_PARTITIONED_TABLE ||
		!our_trigger(e->attach_parent, "cache_ext_row", &clone) ||
		!pg_class_ownercheck(e->attach_part, GetUserId()))
		return;
	all = find_all_inheritors(e->attach_part, NoLock, NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, all)
	{
		Oid relid = lfirst_oid(lc);

		if (our_trigger(relid, "cache_ext_row", &clone) && !clone)
			drop_trigger(relid, "cache_ext_row");
	}
	SPI_finish();
}

/* After the statement: bump what it changed. */
static void
apply_effects(void *arg)
{
	UtilityEffects *e = arg;
	ListCell *lc;

	foreach(lc, e->keys)
		touch_key((char *) lfirst(lc));
	foreach(lc, e->rels)
		touch_relation_tree(lfirst_oid(lc));
	if (e->database)
		touch_key(KeyDatabaseGenName());
	if (e->server)
		touch_key(KeyServerGenName());
}

/*
 * A new partition or inheritance child (a RangeVar) of a tracked relation
 * gets its triggers, and its tree is bumped.  A partition under a tracked
 * parent is covered by the parent's cloned row trigger, so the
 * statement-level triggers it had as a tracked table of its own go.
 */
static void
track_new_child(void *arg)
{
	Oid child = rv_relid((RangeVar *) arg);
	List *keys = NIL;
	List *parents;
	bool partition;

	if (!OidIsValid(child))
		return;
	if (!has_tracked_ancestor(child))
	{
		/*
		 * A tracked table that became a child of an untracked parent:
		 * writes through the parent must reach its row trigger.
		 */
		if (get_rel_relkind(child) == RELKIND_RELATION &&
			get_rel_info(child)->coverage == REL_TRACKED)
			install_triggers(child, false, inherited_keys(child));
		return;
	}
	parents = direct_parents(child);
	if (parents != NIL)
		keys = inherited_keys(linitial_oid(parents));
	partition = get_rel_relispartition(child);
	if (partition)
	{
		List *all = find_all_inheritors(child, NoLock, NULL);
		ListCell *lc;
		static const char *const own[] = {"cache_ext_before", "cache_ext_stmt",
										  "cache_ext_apply", "cache_ext_keys"};

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		foreach(lc, all)
			for (int i = 0; i < lengthof(own); i++)
				drop_trigger(lfirst_oid(lc), own[i]);
		SPI_finish();
	}
	install_triggers(child, partition, keys);
	touch_relation_tree(child);
}

/*
 * The utility hook.  Classify the statement (never raising), note the
 * generation keys of the relations it changes as they stand before it
 * (DETACH and NO INHERIT take ancestors away), run it, then bump them and
 * the keys as they stand after it (ATTACH adds ancestors).  The work
 * cache_ext adds runs in subtransactions: if it fails, the statement still
 * succeeds and the database generation is bumped instead.  Changes of
 * roles and of shared objects bump the server generation even in a
 * database without the extension (the role may read cached results in
 * another database of this server).
 */
void
cache_ext_utility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	UtilityEffects e;
	bool installed = false;
	ListCell *lc;

	memset(&e, 0, sizeof(e));
	if (IsTransactionState())
	{
		installed = OidIsValid(get_trigger_func());
		classify_utility(pstmt->utilityStmt, &e);
	}

	if (installed)
	{
		List *valid = NIL;

		foreach(lc, e.rels)
			if (OidIsValid(lfirst_oid(lc)))
				valid = list_append_unique_oid(valid, lfirst_oid(lc));
		e.rels = valid;
		foreach(lc, e.rels)
			e.keys = relation_tree_keys(lfirst_oid(lc), e.keys);
		if (OidIsValid(e.attach_parent) && OidIsValid(e.attach_part))
			run_guarded(prepare_attach, &e, "prepare the partition for ATTACH");
	}

	/* its commit's bumps are in flight from here (commitq.c's watermark) */
	if (installed && e.finish_gid != NULL)
		OutboxCommitBegin();
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/* VACUUM and CLUSTER may have committed and started transactions */
	if (!IsTransactionState())
		return;
	/* a new database's OID may be a dropped one's: not its refresh jobs */
	if (IsA(pstmt->utilityStmt, CreatedbStmt))
		RefreshDatabaseCreated(get_database_oid(((CreatedbStmt *) pstmt->utilityStmt)->dbname, true));
	if (installed)
	{
		rewrite_effects(&e);
		if ((e.keys != NIL || e.rels != NIL || e.database || e.server) &&
			!run_guarded(apply_effects, &e, "record what the statement changed"))
			touch_key(KeyDatabaseGenName());
		foreach(lc, e.new_children)
			if (!run_guarded(track_new_child, lfirst(lc),
							 "install its triggers on the new partition or child"))
				touch_key(KeyDatabaseGenName());
		if (e.finish_gid != NULL)
			finish_prepared(e.finish_gid);
	}
	else if (e.server && InvalShmemReady())
		touch_key(KeyServerGenName());
}

/* From _PG_init when preloaded: the ProcessUtility hook. */
void
DdlHookInstall(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = cache_ext_utility;
}
