"""Entry points for functions that consume track jobs (enrich, analyze): one builder per cloud.

Such a function differs from its siblings only by its name, its job kind and its core's two
callables (process pushed jobs, drain the Postgres outbox), so the platform plumbing lives here once.
"""
