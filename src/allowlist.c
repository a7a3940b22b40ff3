/*-------------------------------------------------------------------------
 *
 * allowlist.c
 *	  The reviewed lists of built-in functions whose results may be stored.
 *
 * deps.c trusts a built-in function (OID below FirstNormalObjectId,
 * information_schema's included) when it is IMMUTABLE and not on the deny
 * list below, or when it is STABLE and on the allow list below.  Every
 * other built-in bypasses: catalog readers, session state, privileges,
 * statistics, transaction ids, settings the key does not hold.
 *
 * An allow entry is a STABLE function whose result depends only on its
 * arguments and on settings that are part of every key (stmtcache.c's
 * result_settings[]: TimeZone, DateStyle, IntervalStyle, lc_*, xmloption,
 * default_text_search_config, client_encoding, ...).  Its note says which.
 * Entries that call other types' I/O functions (concat, to_json, array_out)
 * are trusted only when those are (deps.c checks the types of the call).
 *
 * A deny entry is an IMMUTABLE built-in that is not: it reads catalogs or
 * server state that no invalidation covers.
 *
 * Reviewing a change: an entry is added only with the source of the
 * function read, and cache_ext_allowlist() exposes both lists to SQL so
 * that the regression test (sql/allowlist.sql) checks every entry's
 * volatility in the running server and that no catalog reader is listed.
 *
 * The date and time input functions are STABLE and not listed: they accept
 * 'now' and 'today'.  Text search entries read the text search catalogs:
 * ALTER TEXT SEARCH must invalidate (see docs/decisions.md).  Enum entries
 * read pg_enum: ALTER TYPE invalidates the whole database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

#include "allowlist.h"

static const AllowEntry allow_list[] = {
	{F_DATE_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_CMP_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_EQ_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_GE_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_GT_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_LE_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_LT_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_NE_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_PART_TEXT_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_EXTRACT_TEXT_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_TRUNC_TEXT_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_TRUNC_TEXT_TIMESTAMPTZ_TEXT, ALLOW_PLAIN, "its arguments (the zone is one)"},
	{F_GENERATE_SERIES_TIMESTAMPTZ_TIMESTAMPTZ_INTERVAL, ALLOW_PLAIN, "TimeZone (days and months across DST)"},
	{F_IN_RANGE_TIMESTAMPTZ_TIMESTAMPTZ_INTERVAL_BOOL_BOOL, ALLOW_PLAIN, "TimeZone"},
	{F_INTERVAL_PL_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_MAKE_TIMESTAMPTZ_INT4_INT4_INT4_INT4_INT4_FLOAT8, ALLOW_PLAIN, "TimeZone"},
	{F_MAKE_TIMESTAMPTZ_INT4_INT4_INT4_INT4_INT4_FLOAT8_TEXT, ALLOW_PLAIN, "its arguments (the zone is one)"},
	{F_OVERLAPS_TIMESTAMPTZ_TIMESTAMPTZ_TIMESTAMPTZ_INTERVAL, ALLOW_PLAIN, "TimeZone"},
	{F_OVERLAPS_TIMESTAMPTZ_INTERVAL_TIMESTAMPTZ_INTERVAL, ALLOW_PLAIN, "TimeZone"},
	{F_OVERLAPS_TIMESTAMPTZ_INTERVAL_TIMESTAMPTZ_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIME_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_CMP_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_EQ_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_GE_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_GT_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_LE_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_LT_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMP_NE_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_DATE_TIME, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_CMP_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_EQ_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_GE_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_GT_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_LE_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_LT_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_NE_DATE, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_CMP_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_EQ_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_GE_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_GT_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_LE_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_LT_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_NE_TIMESTAMP, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_MI_INTERVAL, ALLOW_PLAIN, "TimeZone"},
	{F_TIMESTAMPTZ_PL_INTERVAL, ALLOW_PLAIN, "TimeZone"},
	{F_TIMETZ_TIMESTAMPTZ, ALLOW_PLAIN, "TimeZone"},
	{F_JSONB_PATH_EXISTS_TZ, ALLOW_PLAIN, "TimeZone"},
	{F_JSONB_PATH_MATCH_TZ, ALLOW_PLAIN, "TimeZone"},
	{F_JSONB_PATH_QUERY_TZ, ALLOW_PLAIN, "TimeZone"},
	{F_JSONB_PATH_QUERY_ARRAY_TZ, ALLOW_PLAIN, "TimeZone"},
	{F_JSONB_PATH_QUERY_FIRST_TZ, ALLOW_PLAIN, "TimeZone"},
	{F_DATE_OUT, ALLOW_PLAIN, "DateStyle"},
	{F_TIMESTAMP_OUT, ALLOW_PLAIN, "DateStyle"},
	{F_TIMESTAMPTZ_OUT, ALLOW_PLAIN, "DateStyle, TimeZone"},
	{F_INTERVAL_IN, ALLOW_PLAIN, "IntervalStyle (no 'now'-like input)"},
	{F_INTERVAL_OUT, ALLOW_PLAIN, "IntervalStyle"},
	{F_TO_CHAR_TIMESTAMPTZ_TEXT, ALLOW_PLAIN, "TimeZone, lc_time"},
	{F_TO_CHAR_TIMESTAMP_TEXT, ALLOW_PLAIN, "lc_time"},
	{F_TO_CHAR_INTERVAL_TEXT, ALLOW_PLAIN, "lc_time"},
	{F_TO_CHAR_NUMERIC_TEXT, ALLOW_PLAIN, "lc_numeric, lc_monetary"},
	{F_TO_CHAR_FLOAT8_TEXT, ALLOW_PLAIN, "lc_numeric, lc_monetary"},
	{F_TO_CHAR_FLOAT4_TEXT, ALLOW_PLAIN, "lc_numeric, lc_monetary"},
	{F_TO_CHAR_INT8_TEXT, ALLOW_PLAIN, "lc_numeric, lc_monetary"},
	{F_TO_CHAR_INT4_TEXT, ALLOW_PLAIN, "lc_numeric, lc_monetary"},
	{F_TO_DATE, ALLOW_PLAIN, "lc_time"},
	{F_TO_TIMESTAMP_TEXT_TEXT, ALLOW_PLAIN, "TimeZone, lc_time"},
	{F_TO_NUMBER, ALLOW_PLAIN, "lc_numeric, lc_monetary"},
	{F_CASH_IN, ALLOW_PLAIN, "lc_monetary"},
	{F_CASH_OUT, ALLOW_PLAIN, "lc_monetary"},
	{F_MONEY_NUMERIC, ALLOW_PLAIN, "lc_monetary"},
	{F_MONEY_INT8, ALLOW_PLAIN, "lc_monetary"},
	{F_MONEY_INT4, ALLOW_PLAIN, "lc_monetary"},
	{F_NUMERIC_MONEY, ALLOW_PLAIN, "lc_monetary"},
	{F_TO_TSVECTOR_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TO_TSVECTOR_JSON, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TO_TSVECTOR_JSONB, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TO_TSQUERY_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_PLAINTO_TSQUERY_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_PHRASETO_TSQUERY_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_WEBSEARCH_TO_TSQUERY_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_HEADLINE_TEXT_TSQUERY, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_HEADLINE_TEXT_TSQUERY_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_HEADLINE_JSON_TSQUERY, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_HEADLINE_JSON_TSQUERY_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_HEADLINE_JSONB_TSQUERY, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_HEADLINE_JSONB_TSQUERY_TEXT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_MATCH_TQ, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_TS_MATCH_TT, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_JSON_TO_TSVECTOR_JSON_JSONB, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_JSONB_TO_TSVECTOR_JSONB_JSONB, ALLOW_PLAIN, "default_text_search_config; text search catalogs (ALTER TEXT SEARCH invalidates)"},
	{F_GET_CURRENT_TS_CONFIG, ALLOW_PLAIN, "default_text_search_config"},
	{F_XML, ALLOW_PLAIN, "xmloption"},
	{F_XML_IN, ALLOW_PLAIN, "xmloption"},
	{F_XML_IS_WELL_FORMED, ALLOW_PLAIN, "xmloption"},
	{F_GETDATABASEENCODING, ALLOW_PLAIN, "the database encoding (fixed when the database is created)"},
	{F_PG_CLIENT_ENCODING, ALLOW_PLAIN, "client_encoding"},
	{F_PG_CHAR_TO_ENCODING, ALLOW_PLAIN, "its argument"},
	{F_PG_ENCODING_TO_CHAR, ALLOW_PLAIN, "its argument"},
	{F_LENGTH_BYTEA_NAME, ALLOW_PLAIN, "its arguments"},
	{F_ENUM_IN, ALLOW_PLAIN, "pg_enum (ALTER TYPE invalidates the database)"},
	{F_ENUM_OUT, ALLOW_PLAIN, "pg_enum (ALTER TYPE invalidates the database)"},
	{F_ENUM_FIRST, ALLOW_PLAIN, "pg_enum (ALTER TYPE invalidates the database)"},
	{F_ENUM_LAST, ALLOW_PLAIN, "pg_enum (ALTER TYPE invalidates the database)"},
	{F_ENUM_RANGE_ANYENUM, ALLOW_PLAIN, "pg_enum (ALTER TYPE invalidates the database)"},
	{F_ENUM_RANGE_ANYENUM_ANYENUM, ALLOW_PLAIN, "pg_enum (ALTER TYPE invalidates the database)"},
	{F_PG_TYPEOF, ALLOW_PLAIN, "the declared type of its argument"},
	{F_FORMAT_TEXT, ALLOW_PLAIN, "its argument"},
	{F_JSONB_AGG_FINALFN, ALLOW_PLAIN, "its argument"},
	{F_JSONB_OBJECT_AGG_FINALFN, ALLOW_PLAIN, "its argument"},
	{F_CONCAT, ALLOW_ARG_OUTPUT, "the output functions of its arguments' types"},
	{F_CONCAT_WS, ALLOW_ARG_OUTPUT, "the output functions of its arguments' types"},
	{F_FORMAT_TEXT_ANY, ALLOW_ARG_OUTPUT, "the output functions of its arguments' types"},
	{F_QUOTE_LITERAL_ANYELEMENT, ALLOW_ARG_OUTPUT, "the output function of its argument's type"},
	{F_QUOTE_NULLABLE_ANYELEMENT, ALLOW_ARG_OUTPUT, "the output function of its argument's type"},
	{F_ANYTEXTCAT, ALLOW_ARG_OUTPUT, "the output function of its argument's type"},
	{F_TEXTANYCAT, ALLOW_ARG_OUTPUT, "the output function of its argument's type"},
	{F_ARRAY_TO_STRING_ANYARRAY_TEXT, ALLOW_ARG_OUTPUT, "the output function of the element type"},
	{F_ARRAY_TO_STRING_ANYARRAY_TEXT_TEXT, ALLOW_ARG_OUTPUT, "the output function of the element type"},
	{F_ARRAY_TO_JSON_ANYARRAY, ALLOW_ARG_OUTPUT, "the output functions of the element type"},
	{F_ARRAY_TO_JSON_ANYARRAY_BOOL, ALLOW_ARG_OUTPUT, "the output functions of the element type"},
	{F_ROW_TO_JSON_RECORD, ALLOW_ARG_OUTPUT, "the output functions of the column types"},
	{F_ROW_TO_JSON_RECORD_BOOL, ALLOW_ARG_OUTPUT, "the output functions of the column types"},
	{F_TO_JSON, ALLOW_ARG_OUTPUT, "the output functions of its argument's type"},
	{F_TO_JSONB, ALLOW_ARG_OUTPUT, "the output functions of its argument's type"},
	{F_JSON_BUILD_ARRAY_ANY, ALLOW_ARG_OUTPUT, "the output functions of its arguments' types"},
	{F_JSON_BUILD_ARRAY_, ALLOW_PLAIN, "nothing"},
	{F_JSON_BUILD_OBJECT_ANY, ALLOW_ARG_OUTPUT, "the output functions of its arguments' types"},
	{F_JSON_BUILD_OBJECT_, ALLOW_PLAIN, "nothing"},
	{F_JSONB_BUILD_ARRAY_ANY, ALLOW_ARG_OUTPUT, "the output functions of its arguments' types"},
	{F_JSONB_BUILD_ARRAY_, ALLOW_PLAIN, "nothing"},
	{F_JSONB_BUILD_OBJECT_ANY, ALLOW_ARG_OUTPUT, "the output functions of its arguments' types"},
	{F_JSONB_BUILD_OBJECT_, ALLOW_PLAIN, "nothing"},
	{F_JSON_AGG_TRANSFN, ALLOW_ARG_OUTPUT, "the output functions of the aggregated type"},
	{F_JSON_OBJECT_AGG_TRANSFN, ALLOW_ARG_OUTPUT, "the output functions of the aggregated types"},
	{F_JSONB_AGG_TRANSFN, ALLOW_ARG_OUTPUT, "the output functions of the aggregated type"},
	{F_JSONB_OBJECT_AGG_TRANSFN, ALLOW_ARG_OUTPUT, "the output functions of the aggregated types"},
	{F_ARRAY_OUT, ALLOW_ARG_OUTPUT, "the output function of the element type"},
	{F_ANYARRAY_OUT, ALLOW_ARG_OUTPUT, "the output function of the element type"},
	{F_ANYCOMPATIBLEARRAY_OUT, ALLOW_ARG_OUTPUT, "the output function of the element type"},
	{F_RECORD_OUT, ALLOW_ARG_OUTPUT, "the output functions of the column types"},
	{F_RANGE_OUT, ALLOW_ARG_OUTPUT, "the output function of the subtype"},
	{F_ANYRANGE_OUT, ALLOW_ARG_OUTPUT, "the output function of the subtype"},
	{F_MULTIRANGE_OUT, ALLOW_ARG_OUTPUT, "the output function of the range type"},
	{F_ANYMULTIRANGE_OUT, ALLOW_ARG_OUTPUT, "the output function of the range type"},
	{F_ARRAY_IN, ALLOW_RESULT_INPUT, "the input function of the element type"},
	{F_RECORD_IN, ALLOW_RESULT_INPUT, "the input functions of the column types"},
	{F_RANGE_IN, ALLOW_RESULT_INPUT, "the input function of the subtype"},
	{F_MULTIRANGE_IN, ALLOW_RESULT_INPUT, "the input function of the range type"},
	{F_JSON_POPULATE_RECORD, ALLOW_RESULT_INPUT, "the input functions of the result's column types"},
	{F_JSON_POPULATE_RECORDSET, ALLOW_RESULT_INPUT, "the input functions of the result's column types"},
	{F_JSONB_POPULATE_RECORD, ALLOW_RESULT_INPUT, "the input functions of the result's column types"},
	{F_JSONB_POPULATE_RECORDSET, ALLOW_RESULT_INPUT, "the input functions of the result's column types"},
	{F_JSON_TO_RECORD, ALLOW_RESULT_INPUT, "the input functions of the column definition list's types"},
	{F_JSON_TO_RECORDSET, ALLOW_RESULT_INPUT, "the input functions of the column definition list's types"},
	{F_JSONB_TO_RECORD, ALLOW_RESULT_INPUT, "the input functions of the column definition list's types"},
	{F_JSONB_TO_RECORDSET, ALLOW_RESULT_INPUT, "the input functions of the column definition list's types"},
};

static const DenyEntry deny_list[] = {
	{F_PG_PARTITION_ROOT, "pg_inherits (ATTACH/DETACH PARTITION)"},
	{F_SATISFIES_HASH_PARTITION, "the partition key in pg_partitioned_table"},
	{F_PG_WALFILE_NAME, "the server's current timeline"},
	{F_PG_WALFILE_NAME_OFFSET, "the server's current timeline"},
};

const AllowEntry *
AllowListFind(Oid funcid)
{
	for (int i = 0; i < lengthof(allow_list); i++)
		if (allow_list[i].funcid == funcid)
			return &allow_list[i];
	return NULL;
}

const DenyEntry *
DenyListFind(Oid funcid)
{
	for (int i = 0; i < lengthof(deny_list); i++)
		if (deny_list[i].funcid == funcid)
			return &deny_list[i];
	return NULL;
}

PG_FUNCTION_INFO_V1(cache_ext_allowlist);

/*
 * cache_ext_allowlist() RETURNS TABLE(func regprocedure, verdict text,
 * note text): every entry of both lists; verdict is 'allow' (STABLE, on
 * the allow list), 'allow, if its argument types are' / 'allow, if its
 * result type is' (conditional entries) or 'deny' (IMMUTABLE, refused).
 */
Datum
cache_ext_allowlist(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum values[3];
	bool nulls[3] = {false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < lengthof(allow_list); i++)
	{
		const char *verdict = "allow";

		if (allow_list[i].kind == ALLOW_ARG_OUTPUT)
			verdict = "allow, if its argument types are";
		else if (allow_list[i].kind == ALLOW_RESULT_INPUT)
			verdict = "allow, if its result type is";
		values[0] = ObjectIdGetDatum(allow_list[i].funcid);
		values[1] = CStringGetTextDatum(verdict);
		values[2] = CStringGetTextDatum(allow_list[i].note);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (int i = 0; i < lengthof(deny_list); i++)
	{
		values[0] = ObjectIdGetDatum(deny_list[i].funcid);
		values[1] = CStringGetTextDatum("deny");
		values[2] = CStringGetTextDatum(deny_list[i].note);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
