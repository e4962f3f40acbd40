"""The ``Request.meta`` keys this project uses, and the one exception that travels with them.

Shared by the spider, the download handler, the API middleware and the cache policy, none of
which imports another: each imports this module instead. Every key is documented in the
README ("Request meta keys").
"""

from __future__ import annotations

from typing import Final

from scrapy.exceptions import IgnoreRequest

# Set when the request is built (pgy_spider.noterequest).
API: Final = "pgy_api"  # this is a call to the API: the token is added when it is sent
NOTE_ID: Final = "pgy_note_id"  # the note ID asked for
SEQ: Final = "pgy_seq"  # the seed's sequence number in the run: the key it is settled by
AS_ITEM: Final = "pgy_as_item"  # note_request() without a callback: the note is the item

# Set on the way: by the download handler when sending, by the API middleware per answer.
TOKEN_FP: Final = "pgy_token_fp"  # fingerprint of the token the call was sent with
ATTEMPTS: Final = "pgy_attempts"  # answers (or transport failures) so far
LAST_CODE: Final = "pgy_last_code"  # the last business code answered
REQUEST_ID: Final = "pgy_request_id"  # the API's requestId of the last answer
NOT_BEFORE: Final = "pgy_not_before"  # monotonic time before which a retry is not sent
RATE_LIMITED: Final = "pgy_rate_limited"  # how often this note was answered 302
ENVELOPE: Final = "pgy_envelope"  # the parsed answer (pgy_spider.api.Envelope) of a success
NOTE: Final = "pgy_note"  # the validated, normalised note of a success (pgy_spider.notes)
IN_FLIGHT: Final = "pgy_in_flight"  # the call holds one of the places in flight (flight.py)


class PendingRequest(IgnoreRequest):
    """Not sent: the crawl is stopping or has no usable token; the note stays pending."""
