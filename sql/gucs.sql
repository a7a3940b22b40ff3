-- Configuration: validation, units, and who may see or change what.
SHOW cache_ext.enabled;
SHOW cache_ext.default_ttl;
SHOW cache_ext.connect_timeout;
SHOW cache_ext.command_timeout;
SHOW cache_ext.retry_interval;
SHOW cache_ext.max_entry_size;
SHOW cache_ext.key_prefix;

-- units are accepted
SET cache_ext.default_ttl = '2min';
SHOW cache_ext.default_ttl;
SET cache_ext.default_ttl = '1d';
SHOW cache_ext.default_ttl;
SET cache_ext.command_timeout = '2s';
SHOW cache_ext.command_timeout;
SET cache_ext.max_entry_size = '8MB';
SHOW cache_ext.max_entry_size;
RESET ALL;

-- out of range or malformed values are refused
SET cache_ext.default_ttl = 0;
SET cache_ext.default_ttl = '400d';
SET cache_ext.command_timeout = -1;
SET cache_ext.max_entry_size = '600MB';
SET cache_ext.max_entry_size = 10;
SET cache_ext.enabled = 'maybe';
SET cache_ext.key_prefix = '';
SET cache_ext.key_prefix = 'has space';
SET cache_ext.key_prefix = 'glob*';
SET cache_ext.key_prefix = 'app1:cache:';
SHOW cache_ext.key_prefix;
RESET cache_ext.key_prefix;

-- the Redis URL
SET cache_ext.redis_url = 'http://localhost';
SET cache_ext.redis_url = 'redis://';
SET cache_ext.redis_url = 'redis://localhost:0';
SET cache_ext.redis_url = 'redis://localhost:70000';
SET cache_ext.redis_url = 'redis://localhost:6379/x';
SET cache_ext.redis_url = 'redis://user@localhost';
SET cache_ext.redis_url = 'redis://:p%zzw@localhost';
SET cache_ext.redis_url = 'redis://localhost:6379/0?x=1';
SET cache_ext.redis_url = 'unix://relative.sock';
SET cache_ext.redis_url = 'unix:///tmp/redis.sock?database=1';
SET cache_ext.redis_url = 'rediss://localhost:6380';
-- the password never appears in an error
SET cache_ext.redis_url = 'redis://:TopSecret99@localhost:99999';
SET cache_ext.redis_url = 'redis://localhost';
SET cache_ext.redis_url = 'redis://127.0.0.1:6380/3';
SET cache_ext.redis_url = 'redis://[::1]:6380';
SET cache_ext.redis_url = 'redis://app:s%40cret@cache.example:6380/2';
SET cache_ext.redis_url = 'unix:///var/run/redis/redis.sock?db=2';
SET cache_ext.redis_url = 'unix://:pw@/var/run/redis/redis.sock';
-- Sentinel: the sentinels (port 26379 by default), then the master's name
SET cache_ext.redis_url = 'redis-sentinel://s1:26379,s2,[::1]:26380/mymaster';
SET cache_ext.redis_url = 'rediss-sentinel://app:pw@s1:26379/my%2Dmaster?db=2&sentinel_user=mon';
SET cache_ext.redis_url = 'redis-sentinel://s1:26379';
SET cache_ext.redis_url = 'redis-sentinel://s1:26379/';
SET cache_ext.redis_url = 'redis-sentinel://s1:26379,/mymaster';
SET cache_ext.redis_url = 'redis-sentinel://s1:0/mymaster';
SET cache_ext.redis_url = 'redis-sentinel://s1/my%20master';
SET cache_ext.redis_url = 'redis-sentinel://s1/mymaster?db=x';
SET cache_ext.redis_url = 'redis-sentinel://s1/mymaster?role=replica';
SET cache_ext.redis_url = 'redis-sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/mymaster';
-- Redis Cluster (0.8): seed nodes, no database number, no query
SET cache_ext.redis_url = 'redis-cluster://n1:7000/0';
SET cache_ext.redis_url = 'redis-cluster://n1:7000?db=1';
SET cache_ext.redis_url = 'redis-cluster://n1:7000,';
SET cache_ext.redis_url = 'rediss-cluster://n1,[::1]:7001/';
SET cache_ext.redis_url = 'redis-cluster://n1:7000,n2:7001';
-- each database's keys carry its hash tag: no braces in the prefix
SET cache_ext.key_prefix = 'app{1}:';
SET cache_ext.key_prefix = 'app1:';
RESET cache_ext.redis_url;
SET cache_ext.key_prefix = 'app{1}:';
SET cache_ext.redis_url = 'redis-cluster://n1:7000';
RESET cache_ext.key_prefix;
SET cache_ext.redis_url = '';
RESET cache_ext.redis_url;

-- the namespace is reserved
SET cache_ext.no_such_setting = 1;

-- ordinary roles: the URL (which may hold a password) is hidden and fixed
CREATE ROLE cache_ext_plain LOGIN;
SET ROLE cache_ext_plain;
SHOW cache_ext.redis_url;
SELECT count(*) AS visible FROM pg_settings WHERE name = 'cache_ext.redis_url';
SET cache_ext.redis_url = 'redis://evil.example';
SET cache_ext.key_prefix = 'other:';
SET cache_ext.max_entry_size = '100MB';
-- per-session tuning is allowed
SET cache_ext.default_ttl = '30s';
SET cache_ext.enabled = off;
SELECT cache_stats_reset();
RESET ROLE;
DROP ROLE cache_ext_plain;
