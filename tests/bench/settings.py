"""Settings of the benchmarks: the production settings on a bench database, plus the baseline views (urls)."""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("FERNET_KEYS", "bench-only-fernet-key-not-for-production")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mlc_bench")

from config.settings import *  # noqa: E402,F403

ROOT_URLCONF = "tests.bench.urls"
