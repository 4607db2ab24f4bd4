"""Settings shared by every environment. Everything that differs between machines comes from the environment.

Rules of this file:
- secrets (SECRET_KEY, IAMPORT_IMP_SECRET, ...) come only from the environment;
- PostgreSQL is the only database: DATABASE_URL, else the embedded server under var/ (config.embedded);
- the Celery broker is CELERY_BROKER_URL, else an embedded broker on that same PostgreSQL (kombu's
  SQLAlchemy transport), so `make run` needs no separate broker server.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


def env_float(name: str, default: float) -> float:
    value = env(name)
    return default if value is None else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


SECRET_KEY = env("DJANGO_SECRET_KEY", "dev-only-insecure-secret-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally: /api/docs/ works without a CDN
    "django_celery_beat",
    "rest_framework_api_key",
    "billing",
    "notices",
    "subscriptions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # 503 + Retry-After (not a 500) while the database or the broker is unreachable (config/unavailable.py).
    "config.unavailable.ServiceUnavailableMiddleware",
    # Serves /static/ from gunicorn too (docker-compose, production) with compression and far-future caching.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A request id on every response; every request with a server key audited (billing/api/middleware.py).
    "billing.api.middleware.RequestAuditMiddleware",
    # Idempotency-Key on POST /api/… (billing/services/idempotency.py).
    "billing.api.middleware.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "subscriptions.context_processors.iamport",
                "subscriptions.context_processors.storefront",
            ],
        },
    }
]

# --- Database: PostgreSQL only -------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
        raise RuntimeError("DATABASE_URL must point at PostgreSQL: it is the only supported database")
    EMBEDDED_POSTGRES = None
else:
    EMBEDDED_POSTGRES = embedded.ensure_running(name=env("EMBEDDED_DB_NAME", embedded.DEFAULT_DB_NAME))
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": EMBEDDED_POSTGRES.name,
            "USER": EMBEDDED_POSTGRES.user,
            "HOST": EMBEDDED_POSTGRES.socket_dir,
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60),
        }
    }
# A persistent connection is checked before its first use in each request or task: after a database restart or
# failover the first query reconnects instead of failing on the dead socket.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A connection attempt to a database that is gone (a failover's old address) gives up after this many seconds
# rather than the kernel's TCP timeout, so requests answer 503 quickly and tasks reach their retry.
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
if env("DATABASE_NAME"):  # lets a Celery worker started by a test attach to the test database
    DATABASES["default"]["NAME"] = env("DATABASE_NAME")
DATABASES["default"].setdefault("TEST", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n and time: Korean first, English second; storage in UTC, billing calendar in KST ----------
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves from the apps' static folders as well, so gunicorn works before any collectstatic.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)  # collectstatic's target; WhiteNoise warns when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "billing@localhost")
# Empty means "send no notice_url" (no webhooks), e.g. for benchmarks; unset means the local dev server.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

# --- The merchant's identity (전자상거래법 §10 and 시행령 §10: shown in every subscriber page's footer, in emails
# and on receipts). Empty by default: dev and test settings fill in the sandbox demo merchant; production reads
# the real values from the environment (subscriptions.merchant warns at start-up about missing ones).
MERCHANT_NAME = env("MERCHANT_NAME", "")  # 상호
MERCHANT_REPRESENTATIVE = env("MERCHANT_REPRESENTATIVE", "")  # 대표자
MERCHANT_BUSINESS_NUMBER = env("MERCHANT_BUSINESS_NUMBER", "")  # 사업자등록번호, 10 digits (dashes optional)
MERCHANT_MAIL_ORDER_NUMBER = env("MERCHANT_MAIL_ORDER_NUMBER", "")  # 통신판매업 신고번호
MERCHANT_ADDRESS = env("MERCHANT_ADDRESS", "")  # 사업장 주소
MERCHANT_PHONE = env("MERCHANT_PHONE", "")  # 고객센터 전화
MERCHANT_EMAIL = env("MERCHANT_EMAIL", "")  # 고객센터 이메일
MERCHANT_HOSTING_PROVIDER = env("MERCHANT_HOSTING_PROVIDER", "")  # 호스팅 서비스 제공자

# --- Django REST framework ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # A server key (Bearer sk_…) first: it is told apart by its prefix, so the subscriber token never sees one.
        "billing.api.keys.ServerKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "billing.api.authentication.BearerTokenAuthentication",
    ],
    # API bodies are JSON only (the HTML pages post forms to Django views, not to DRF): the schema declares one body
    # type, so a generated client cannot send a form where null becomes the text "None".
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # A subscriber (session or token) by default; the merchant endpoints ask for a server key's scope instead.
    "DEFAULT_PERMISSION_CLASSES": ["billing.api.keys.IsSubscriber"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "billing.api.exceptions.api_exception_handler",
    # Scoped throttles (per user, per IP when anonymous). The cache holds the counters: use a shared cache
    # (CACHES) when several processes serve the API.
    "DEFAULT_THROTTLE_RATES": {
        "card_registration": env("API_THROTTLE_CARD_REGISTRATION", "10/minute"),
        "auth_token": env("API_THROTTLE_AUTH_TOKEN", "20/minute"),
    },
}
# Rate limits of the web views (subscriptions/ratelimit.py; the API's are DEFAULT_THROTTLE_RATES above). Counted
# in the default cache like DRF's throttles: production needs a cache shared by every process.
RATE_LIMIT_LOGIN_FAILURES = env_int("RATE_LIMIT_LOGIN_FAILURES", 10)  # failed log-ins per username + client IP
RATE_LIMIT_LOGIN_WINDOW_SECONDS = env_int("RATE_LIMIT_LOGIN_WINDOW_SECONDS", 15 * 60)
RATE_LIMIT_CARD_REGISTRATION = env_int("RATE_LIMIT_CARD_REGISTRATION", 10)  # prepares (and confirms) per user
RATE_LIMIT_CARD_REGISTRATION_WINDOW_SECONDS = env_int("RATE_LIMIT_CARD_REGISTRATION_WINDOW_SECONDS", 60)
SPECTACULAR_SETTINGS = {
    "TITLE": "kbilling API",
    "DESCRIPTION": "Subscriptions, billing keys, invoices, payments and refunds on Iamport (PortOne V1).",
    # The API version: a changed schema needs a new one (docs/openapi.json, checked by make lint:
    # billing/api/schema_check.py). 2: JSON-only bodies, unknown keys refused, Bearer auth, reads by id or code.
    # 6: consents (4), server keys, the merchant's customers and the event feed, Idempotency-Key on every POST (5).
    "VERSION": "6",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "InvoiceStatusEnum": "billing.models.Invoice.Status",
        "PaymentStatusEnum": "billing.models.PaymentAttempt.Status",
        "SubscriptionStatusEnum": "subscriptions.models.Subscription.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "billing.api.schema.declare_idempotency_key",
    ],
}

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
if not CELERY_BROKER_URL:
    if EMBEDDED_POSTGRES is not None:
        CELERY_BROKER_URL = "sqla+" + EMBEDDED_POSTGRES.sqlalchemy_url()
    else:
        CELERY_BROKER_URL = "sqla+" + re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", DATABASE_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# --- riding out a lost database or broker (README, Operations) ---
# A worker that loses the broker reconnects for as long as it takes (None = forever) instead of exiting after
# 100 tries; tasks it had received but not acknowledged (acks_late) are delivered again.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 4.0)
# Publishing (a sweep's fan-out, a retry, a webhook's processing) waits out a short broker restart.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": env_int("CELERY_PUBLISH_MAX_RETRIES", 6),
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 2.0,
}
# A task that fails because the database or the broker went away (config.celery.InfrastructureRetryTask) is
# retried after a jittered backoff: between half and all of min(MAX, BASE x 2^retries) seconds. MAX stays
# below the beat's sweep interval (60 s), so a due subscription is attempted within one sweep interval after
# the database is back; RETRIES bounds the whole wait (20 retries at the 30 s cap: about 8 minutes, longer
# than a managed failover). Every task re-checks its rows, so a retry never charges twice.
TASK_INFRA_RETRY_BASE_SECONDS = env_float("TASK_INFRA_RETRY_BASE_SECONDS", 1.0)
TASK_INFRA_RETRY_MAX_SECONDS = env_float("TASK_INFRA_RETRY_MAX_SECONDS", 30.0)
TASK_INFRA_RETRIES = env_int("TASK_INFRA_RETRIES", 20)
# What a request answers while the database (or, for a write that enqueues work, the broker) is unreachable:
# 503 with this Retry-After (config.unavailable).
SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = env_int("SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS", 30)

# --- Iamport ------------------------------------------------------------------------------------
# iamport_v1 | portone_v2 (the dotted class path of older configurations still means V1)
BILLING_GATEWAY = env("BILLING_GATEWAY", "iamport_v1")
IAMPORT_API_URL = env("IAMPORT_API_URL", "http://127.0.0.1:8089")
IAMPORT_IMP_KEY = env("IAMPORT_IMP_KEY", "imp_apikey")
IAMPORT_IMP_SECRET = env(
    "IAMPORT_IMP_SECRET",
    # The public demo secret of Iamport's own samples; the sandbox accepts it. Real secrets: environment only.
    "ekKoeW8RyKuT0zgaZsUtXXTLQ4AhPFW3ZGseDA6bkA5lamv9OqDMnxyeB9wqOsuO9W3Mx9YSJ4dTqJ3f",
)
IAMPORT_MERCHANT_CODE = env("IAMPORT_MERCHANT_CODE", "imp00000000")
IAMPORT_CHANNEL_KEY = env("IAMPORT_CHANNEL_KEY")
IAMPORT_PG = env("IAMPORT_PG", "html5_inicis.INIBillTst")
IAMPORT_INCLUDE_SANDBOX = env_bool("IAMPORT_INCLUDE_SANDBOX", True)
IAMPORT_CONNECT_TIMEOUT = env_float("IAMPORT_CONNECT_TIMEOUT", 5.0)
IAMPORT_READ_TIMEOUT = env_float("IAMPORT_READ_TIMEOUT", 60.0)
IAMPORT_SDK_URL = env("IAMPORT_SDK_URL", "http://127.0.0.1:8089/v1/iamport.js")
# The sandbox's own controls (clock, faults): dev and test only; None in production.
IAMPORT_SANDBOX_URL = env("IAMPORT_SANDBOX_URL", "http://127.0.0.1:8089")

# --- PortOne V2 (BILLING_GATEWAY=portone_v2) --------------------------------------------------------
# https://api.portone.io for the real PortOne; the sandbox serves V2 under /v2. Checked at start-up
# (billing.checks) when V2 is the gateway; when V1 is, setting PORTONE_API_SECRET keeps V2 cards chargeable.
PORTONE_API_URL = env("PORTONE_API_URL", "http://127.0.0.1:8089/v2")
PORTONE_API_SECRET = env("PORTONE_API_SECRET")  # V2 API secret: environment only, never committed
PORTONE_STORE_ID = env("PORTONE_STORE_ID")
PORTONE_CHANNEL_KEY = env("PORTONE_CHANNEL_KEY")  # the billing channel (정기결제 채널)
PORTONE_WEBHOOK_SECRET = env("PORTONE_WEBHOOK_SECRET")  # whsec_..., console: 결제 연동 > 웹훅 (V2)
PORTONE_CONNECT_TIMEOUT = env_float("PORTONE_CONNECT_TIMEOUT", 5.0)
PORTONE_READ_TIMEOUT = env_float("PORTONE_READ_TIMEOUT", 60.0)
PORTONE_SDK_URL = env("PORTONE_SDK_URL", "http://127.0.0.1:8089/v2/browser-sdk.js")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    # The request id of the API request a line was written in (billing/api/middleware.py), "-" outside one.
    "filters": {"request_id": {"()": "billing.request_id.RequestIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Billing ------------------------------------------------------------------------------------
# Prefix of every merchant_uid/customer_uid we generate, so ids never collide with another app on the account.
BILLING_UID_PREFIX = env("BILLING_UID_PREFIX", "kb")
# "again": our beat sweeps charge due invoices with /subscribe/payments/again. "schedule": Iamport charges
# pre-registered schedules (/subscribe/payments/schedule) and tells us by webhook.
BILLING_STRATEGY = env("BILLING_STRATEGY", "again")
# Soft declines retry this many days after the FIRST failure; then the final action.
BILLING_DUNNING_SOFT_RETRY_DAYS = [int(x) for x in env_list("BILLING_DUNNING_SOFT_RETRY_DAYS", "1,3,5,10,14")]
# Gateway errors (Iamport or the PG unreachable) get quick retries, in minutes, before the soft schedule applies.
BILLING_DUNNING_GATEWAY_RETRY_MINUTES = [int(x) for x in env_list("BILLING_DUNNING_GATEWAY_RETRY_MINUTES", "5,30,120")]
# What happens when dunning gives up: "cancel" the subscription, or mark it "unpaid" (kept, no access).
BILLING_DUNNING_FINAL_ACTION = env("BILLING_DUNNING_FINAL_ACTION", "cancel")
# Charges refused for the gateway's rate (HTTP 429) are retried this many times (1, 2, 4 ... 30 minutes apart)
# before they count as gateway errors.
BILLING_THROTTLED_RETRIES = env_int("BILLING_THROTTLED_RETRIES", 6)
# A PENDING attempt older than this is looked up by the janitor (a worker died between record and answer).
BILLING_RECONCILE_PENDING_AFTER_SECONDS = env_int("BILLING_RECONCILE_PENDING_AFTER_SECONDS", 180)
# An attempt that Iamport has no record of this long after it was made never reached the PG: FAILED.
BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS = env_int("BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS", 600)
# At most this many charges start per second across all workers (0 = no limit); some PGs cap merchants at 50/s.
BILLING_CHARGE_RATE_LIMIT = env_int("BILLING_CHARGE_RATE_LIMIT", 0)
# Gateway calls one worker process keeps in flight (threads that hold no database connection). With latency L
# seconds, one process charges at most this / L per second.
BILLING_GATEWAY_CONCURRENCY = env_int("BILLING_GATEWAY_CONCURRENCY", 32)
# Rows one renewal or dunning-retry task claims and charges together (a handful of statements per batch).
BILLING_BATCH_SIZE = env_int("BILLING_BATCH_SIZE", 50)
BILLING_INCOMPLETE_EXPIRY_HOURS = env_int("BILLING_INCOMPLETE_EXPIRY_HOURS", 23)
# Notices (notices/): channels tried in this order (alimtalk, sms, email), and what a legally required notice
# (the 7-day notice before a trial or discount turns paid) does when no phone channel delivered it:
# "email" takes an email the mail server accepted as the notice; "cancel" ends the subscription at the trial's
# end without charging. Either way the decision is written in the delivery log and the audit log.
NOTICE_CHANNELS = env_list("NOTICE_CHANNELS", "alimtalk,sms,email")
NOTICE_REQUIRED_FALLBACK = env("NOTICE_REQUIRED_FALLBACK", "email")
NOTICE_CHANNEL_TRIES = env_int("NOTICE_CHANNEL_TRIES", 3)  # provider errors (5xx, 429) before a channel fails
# SOLAPI (알림톡 and SMS/LMS). Without an API key the app talks to notify_sandbox (make run starts it on :8091).
SOLAPI_API_KEY = env("SOLAPI_API_KEY", "")
SOLAPI_BASE_URL = env("SOLAPI_BASE_URL", "https://api.solapi.com" if SOLAPI_API_KEY else "http://127.0.0.1:8091")
if not SOLAPI_API_KEY:
    SOLAPI_API_KEY = "NCSSANDBOXKEY0001"  # notify_sandbox's default key and secret
SOLAPI_API_SECRET = env("SOLAPI_API_SECRET", "SANDBOXSECRETSANDBOXSECRETSANDBOX")
SOLAPI_SENDER = env("SOLAPI_SENDER", "0200000000")  # a 발신번호 registered with SOLAPI
SOLAPI_PF_ID = env("SOLAPI_PF_ID", "KA01PF-SANDBOX")  # the Kakao channel (카카오톡 채널) id
# 알림톡 template ids per notice type, approved by Kakao: "trial_ending=KA01TP…,payment_failed=KA01TP…".
NOTICE_ALIMTALK_TEMPLATES = dict(
    item.split("=", 1)
    for item in env_list("NOTICE_ALIMTALK_TEMPLATES", "trial_ending=KBTRIAL7D,payment_failed=KBPAYFAIL")
    if "=" in item
)
# Consent before a trial turns paid or a price goes up (전자상거래법 §13 ⑥): asked at most this many days before
# the change (the law's 30; a lower value only shortens the window), reminded every N days while unanswered,
# never asked again within the quiet period after a "no", and a price increase that could be asked only less
# than the minimum notice before a renewal moves to the renewal after.
BILLING_CONSENT_WINDOW_DAYS = min(env_int("BILLING_CONSENT_WINDOW_DAYS", 30), 30)
BILLING_CONSENT_REMINDER_DAYS = max(env_int("BILLING_CONSENT_REMINDER_DAYS", 7), 1)
BILLING_CONSENT_QUIET_DAYS = max(env_int("BILLING_CONSENT_QUIET_DAYS", 7), 7)
BILLING_PRICE_CHANGE_MIN_NOTICE_DAYS = env_int("BILLING_PRICE_CHANGE_MIN_NOTICE_DAYS", 7)
# Webhooks: only Iamport's documented source IPs are accepted when the allow-list is on (production).
IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED = env_bool("IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED", False)
IAMPORT_WEBHOOK_IPS = env_list("IAMPORT_WEBHOOK_IPS", "52.78.100.19,52.78.48.223,52.78.5.241")
# Daily reconciliation (대사) against Iamport: payments per page of GET /payments/status/all (Iamport allows
# at most 1000), and who is emailed when a run leaves anything unresolved (comma separated; empty: ADMINS).
BILLING_RECONCILE_PAGE_SIZE = env_int("BILLING_RECONCILE_PAGE_SIZE", 1000)
BILLING_OPERATOR_EMAILS = env_list("BILLING_OPERATOR_EMAILS", "")

# Outgoing events (billing/services/events.py): how long a merchant's endpoint may take to answer one delivery.
EVENT_DELIVERY_TIMEOUT = (
    env_float("EVENT_DELIVERY_CONNECT_TIMEOUT", 3.0),
    env_float("EVENT_DELIVERY_READ_TIMEOUT", 10.0),
)
