"""Backstop: a logging filter that masks tokens in every record a handler emits.

The design keeps tokens out of URLs Scrapy sees; this filter catches anything
that slips through (third-party messages, tracebacks) before it is written.
"""

from __future__ import annotations

import logging

from pgy_spider.api import mask_secrets


class SecretMaskingFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...]):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_secrets(text, self.secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, self.secrets)
        return True
