"""A brand-page project's settings: Scrapy's own defaults, plus the pgy-spider add-on."""

BOT_NAME = "brandsite"
SPIDER_MODULES = ["brandsite.spiders"]
NEWSPIDER_MODULE = "brandsite.spiders"

ROBOTSTXT_OBEY = True  # as in Scrapy's project template
CONCURRENT_ITEMS = 50
FEED_EXPORT_ENCODING = "utf-8"
TELNETCONSOLE_ENABLED = False

ADDONS = {"pgy_spider.addon.PgyAddon": 100}
