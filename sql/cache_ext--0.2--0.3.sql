/* cache_ext 0.2 -> 0.3: fail closed (issue 10) */

\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.3'" to load this file. \quit

-- ===========================================================================
-- Section: catalog-free prepared transactions, grants (invalidation side)
-- ===========================================================================

-- cache_tracked is documented as readable by anyone.
GRANT SELECT ON cache_tracked TO PUBLIC;


-- ===========================================================================
-- Section: cacheability allow-list (analysis side)
-- ===========================================================================

-- The reviewed built-in functions the analysis trusts (verdict 'allow...')
-- or refuses although IMMUTABLE ('deny'); see src/allowlist.c.
CREATE FUNCTION cache_ext_allowlist(OUT func regprocedure, OUT verdict text, OUT note text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cache_ext_allowlist'
LANGUAGE C STRICT STABLE PARALLEL SAFE;


-- ===========================================================================
-- Section: outbox, standby fence, restore detection (recovery side)
-- ===========================================================================


-- ===========================================================================
-- Section: codecs, stats (entry and stats side)
-- ===========================================================================


-- ===========================================================================
-- Section: call pipeline (verification sampler, settings)
-- ===========================================================================
