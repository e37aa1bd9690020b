"""Settings, read from the environment with safe development defaults.

`TONGBAN_ENV=production` turns on production mode, which refuses to start with a default
secret, DEBUG on, or an SQLite database (see `tongban.core.checks`).
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("TONGBAN_DATA_DIR", Path.cwd() / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEVELOPMENT_SECRET_KEY = "tongban-development-secret-key-not-for-production"  # noqa: S105


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


PRODUCTION = os.environ.get("TONGBAN_ENV", "development") == "production"
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'tongban.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the server and a worker share the embedded database.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "tongban.people.apps.TongbanAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "tongban.core",
    "tongban.audit",
    "tongban.people",
    "tongban.catalog",
    "tongban.licensing",
    "tongban.exchange",
    "tongban.cases",
    "tongban.entitlements",
    "tongban.portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tongban.core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "tongban.core.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tongban.core.middleware.ElderModeMiddleware",
    "tongban.core.middleware.ErrorPageMiddleware",
]

ROOT_URLCONF = "tongban.config.urls"
WSGI_APPLICATION = "tongban.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tongban.portal.context_processors.region",
            ],
        },
    },
]

AUTH_USER_MODEL = "people.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "people:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:home"

# Accounts: lock after this many failed logins, for this long; sessions end when idle.
LOGIN_MAX_FAILURES = 5
LOGIN_LOCK_MINUTES = 15
SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_SECONDS", "1800"))
SESSION_COOKIE_AGE = SESSION_IDLE_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = PRODUCTION and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "media"
# The development server serves static files itself; production uses WhiteNoise-less
# `collectstatic` behind the front proxy.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Audit checkpoints are signed with an Ed25519 key derived from this secret unless a
# dedicated key is given (base64 of a 32-byte seed).
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
AUDIT_CHECKPOINT_INTERVAL = int(os.environ.get("AUDIT_CHECKPOINT_INTERVAL", "256"))

# Seals' private keys are encrypted at rest with this key (base64 of 32 bytes); the trust
# list and status lists are signed with the platform key (base64 of a 32-byte Ed25519 seed).
# Both default to keys derived from SECRET_KEY; production should set them separately.
SEAL_KEY_ENCRYPTION_KEY = os.environ.get("SEAL_KEY_ENCRYPTION_KEY", "")
PLATFORM_SIGNING_KEY = os.environ.get("PLATFORM_SIGNING_KEY", "")

# The region this node serves; the demo city 演示市 uses these by default.
TONGBAN_REGION_CODE = os.environ.get("TONGBAN_REGION_CODE", "370100")
TONGBAN_REGION_NAME = os.environ.get("TONGBAN_REGION_NAME", "演示市")
TONGBAN_REGION_NAME_EN = os.environ.get("TONGBAN_REGION_NAME_EN", "Demo City")

# Staff and administrators sign in with TOTP (django-otp); secrets are never shown in admin.
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", f"{TONGBAN_REGION_NAME}通办")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

NINJA_PAGINATION_PER_PAGE = 20

# Data-sharing exchange: seconds a remote provider has for the whole request and answer.
# Rate limits per consumer count in the cache: give production a shared cache (Redis,
# database) so every app process counts the same window.
EXCHANGE_PROVIDER_TIMEOUT = float(os.environ.get("EXCHANGE_PROVIDER_TIMEOUT", "5"))

# Online applications (办件): uploaded materials live under the data directory, outside the
# web root (nothing serves UPLOAD_DIR), under random names; the size limit is per file.
UPLOAD_DIR = Path(os.environ.get("UPLOAD_DIR", DATA_DIR / "uploads"))
UPLOAD_MAX_BYTES = int(os.environ.get("UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
# Where SMS and email notifications go: the console backend prints them (demo, development).
NOTIFICATION_BACKEND = os.environ.get(
    "NOTIFICATION_BACKEND", "tongban.cases.notifications.ConsoleBackend"
)
# 到期提醒: days before a license expires on which its holder is reminded, for license types
# that set no steps of their own; the largest step is the reminder window.
TONGBAN_EXPIRY_REMINDER_DAYS = tuple(
    int(days) for days in os.environ.get("TONGBAN_EXPIRY_REMINDER_DAYS", "90,30,7").split(",")
)
# Instant-approval rules (秒批): a YAML rule book; empty means the one shipped with the cases app.
CASES_RULES_FILE = os.environ.get("CASES_RULES_FILE", "")

# Background tasks (django-tasks) are queued in the database — SQLite or PostgreSQL alike —
# and run by `tongban worker`, which also queues the periodic tasks below when they are due.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Periodic tasks: a name, the task's import path and a cron expression read in TIME_ZONE.
# Each due time is queued once, however many workers run; a worker that was stopped over a
# due time (or finds an entry newly added) queues the latest one it missed when it starts.
TONGBAN_SCHEDULE = {
    "entitlements-daily": ("tongban.entitlements.tasks.entitlements_run_task", "0 2 * * *"),
    # After the rules, so that a pension granted tonight is verified from tomorrow's period on.
    "verifications-daily": ("tongban.entitlements.tasks.verifications_sweep_task", "0 3 * * *"),
    # In the morning, so that reminders arrive in the day.
    "license-expiry-daily": ("tongban.cases.tasks.expiry_sweep_task", "0 7 * * *"),
    # Finished task results and claimed slots older than 30 days, on Sunday night.
    "tasks-prune-weekly": ("tongban.core.tasks.tasks_prune_task", "30 4 * * 0"),
}
# 免申即享 runs on PostgreSQL: buckets of people written at once, each on a connection of its
# own — about the database server's cores (on two, a third only makes them wait).
ENTITLEMENT_RUN_WORKERS = max(1, int(os.environ.get("ENTITLEMENT_RUN_WORKERS", "2")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
