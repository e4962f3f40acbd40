"""``scrapy pgy_report``: one self-contained HTML page about a run or the collected data.

Plain modules, no Scrapy imports:

- ``inputs``: the summary, the feed (JSON lines or a JSON array, streamed) and ID files;
- ``model``: one note as the report sees it (engagement, creator, price);
- ``aggregate``: the run's outcome, top notes and creators, cost per engagement;
- ``growth``: metric growth between fetches, from ``note_metrics`` snapshots;
- ``mongo_source``: reading notes, creators and snapshots from MongoDB;
- ``fonts`` and ``charts``: matplotlib charts with a CJK font, embedded as SVG;
- ``render``: the Jinja2 page (autoescaped: note text is untrusted);
- ``build``: the two reports end to end, for the command.

matplotlib, Jinja2 and pymongo are imported by the modules that use them, never here:
the command that imports this package is loaded by every ``scrapy`` invocation.
"""
