"""Date and time formats of the admin (settings.FORMAT_MODULE_PATH): event times to the second, ISO order, so
two events a few seconds apart read apart and a log line is found by its time (all times UTC)."""

DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
