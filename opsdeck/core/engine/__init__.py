"""The engine: operations run in this process (the default) or as jobs on Celery workers over Redis.

`registry` declares every operation once (`operation` says what one is, `operations` how each runs);
`runner` chooses here or a worker and runs it; `jobs` holds the plain-JSON job specs and how events
travel; `planfiles` moves saved plans through the state bucket; `worker` runs jobs on a worker;
`dispatch` sends them and follows them from the caller; `remote` is the caller's side of refresh,
releases and nukes on the workers; `status` says what the engine looks like.
"""
