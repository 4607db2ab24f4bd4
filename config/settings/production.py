"""Production: everything secret or host-specific is required from the environment; `check --deploy` clean."""

from .base import *  # noqa: F403
from .base import env, env_bool, env_int

DEBUG = False
BILLING_TEST_CLOCK = False

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY or SECRET_KEY.startswith("dev-only"):
    raise RuntimeError("Set DJANGO_SECRET_KEY to a long random value in production")

IAMPORT_API_URL = env("IAMPORT_API_URL", "https://api.iamport.kr")
IAMPORT_SDK_URL = env("IAMPORT_SDK_URL", "https://cdn.iamport.kr/v1/iamport.js")
IAMPORT_SANDBOX_URL = None
PORTONE_API_URL = env("PORTONE_API_URL", "https://api.portone.io")
PORTONE_SDK_URL = env("PORTONE_SDK_URL", "https://cdn.portone.io/v2/browser-sdk.js")
IAMPORT_INCLUDE_SANDBOX = env_bool("IAMPORT_INCLUDE_SANDBOX", False)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED = env_bool("IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED", True)
# Rate-limit counters (DRF throttles, log-in and card registration limits) live in the default cache; the
# default LocMem cache counts per process, so several web processes need one shared cache (Redis).
if env("DJANGO_CACHE_URL"):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env("DJANGO_CACHE_URL")}
    }

# Hashed, compressed static files (run `manage.py collectstatic` at build time).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
