"""pytest: the same PostgreSQL rule as dev (DATABASE_URL or embedded), fast hashing, in-memory email."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
BILLING_TEST_CLOCK = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
IAMPORT_READ_TIMEOUT = 5.0
# The sandbox's billing channel (REST billing-key issuance requires a channel_key since the 2026 schema).
IAMPORT_CHANNEL_KEY = env("IAMPORT_CHANNEL_KEY", "channel-key-sandbox-billing")

# The sandbox demo merchant (fictitious; 000-00-00000-style numbers that belong to no one) unless set.
MERCHANT_NAME = env("MERCHANT_NAME", "케이빌링 데모상점")
MERCHANT_REPRESENTATIVE = env("MERCHANT_REPRESENTATIVE", "홍길동")
MERCHANT_BUSINESS_NUMBER = env("MERCHANT_BUSINESS_NUMBER", "123-45-67890")
MERCHANT_MAIL_ORDER_NUMBER = env("MERCHANT_MAIL_ORDER_NUMBER", "제2026-서울강남-0000호")
MERCHANT_ADDRESS = env("MERCHANT_ADDRESS", "서울특별시 강남구 테헤란로 000, 0층")
MERCHANT_PHONE = env("MERCHANT_PHONE", "02-000-0000")
MERCHANT_EMAIL = env("MERCHANT_EMAIL", "help@kbilling.example")
MERCHANT_HOSTING_PROVIDER = env("MERCHANT_HOSTING_PROVIDER", "데모 호스팅(개발용)")
