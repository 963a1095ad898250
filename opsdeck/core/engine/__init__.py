"""The engine: operations run in this process (the default) or as jobs on Celery workers over Redis.

`jobs` holds the plain-JSON job specs and how events travel; `planfiles` moves saved plans through the
state bucket; `worker` runs jobs on a worker; `dispatch` sends them and follows them from the caller;
`remote` runs refresh and releases on the workers; `status` says what the engine looks like.
"""
