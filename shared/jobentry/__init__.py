"""Entry points for functions that consume jobs (embed, enrich, analyze): one builder per cloud.

Such a function differs from its siblings only by its name, its job kind and how it settles jobs
(:class:`~shared.jobentry.handling.JobHandling`), so the platform plumbing lives here once.
"""
