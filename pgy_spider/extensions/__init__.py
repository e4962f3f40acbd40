"""Run-wide concerns, each a Scrapy extension connected to signals."""
