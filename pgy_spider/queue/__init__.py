"""One run across many processes and hosts: a seed queue on Redis streams.

Every process started with the same ``PGY_QUEUE_URL`` and ``PGY_RUN`` takes part in one run.
The process holding the run's *reader* lease reads the seed files (once for the run) and
pushes each batch of new notes to the run's stream in one atomic script, together with the
run-wide dedup, the counts of what it settled at once (rejected, duplicate, fresh) and its
durable cursor. Every process is a *worker*: it takes entries with ``XREADGROUP``, requests
their notes as a single process would, and settles each entry in one script once its note
is on disk. Entries of a worker that shows no sign of life are claimed by the others.

Modules: :mod:`.url` (the URL, its password masked), :mod:`.keys` (key names, dedup
buckets), :mod:`.scripts` (the Lua scripts), :mod:`.identity` (what a seed source is),
:mod:`.client` (redis-py, imported only here and only in queue mode), :mod:`.check` (the
checks before a crawl starts), :mod:`.member` (this process in the run), :mod:`.reader`
(the reader role), :mod:`.source` (stream entries as seeds), :mod:`.share` (this process's
own counts) and :mod:`.status` (the run-wide summary of ``scrapy pgy_status``).
"""
