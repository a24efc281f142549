"""Settings.from_env reads the README's variables; bad values refused clearly; no secret in repr."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reservation.cli import main
from reservation.env_readers import SettingsError
from reservation.env_variables import VARIABLES
from reservation.settings import Settings, markdown_table, shown_default

README = Path(__file__).resolve().parent.parent / "README.md"
# A value other than the default for every variable, as a user would write it.
NEW_SECRET = "new-session-secret-0123456789abcdef"
OLD_SECRET = "old-session-secret-0123456789abcdef"
EC_PUBLIC_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
EVERY_VARIABLE = {
    "REDIS_URL": "redis://cache:6379/2",
    "REDIS_CLUSTER": "On",
    "MONGODB_URI": "mongodb://db:27017",
    "MONGODB_DATABASE": "shop",
    "RESERVATION_ADMIN_TOKEN": "admin-secret",
    "RESERVATION_HOLD_SECONDS": "90",
    "RESERVATION_AWAITING_PAYMENT_SECONDS": "3600",
    "RESERVATION_KEY_PREFIX": "shop",
    "RESERVATION_SOLD_OUT_CACHE_SECONDS": "0",
    "RESERVATION_READ_CACHE_SECONDS": "0.5",
    "RESERVATION_SWEEP_SECONDS": "5",
    "RESERVATION_REFUND_RETRY_SECONDS": "30",
    "RESERVATION_REFUND_RETRY_WINDOW_SECONDS": "7200",
    "RESERVATION_RECONCILE_ON_START": "no",
    "RESERVATION_REBUILD_CHECK_SECONDS": "0",
    "RESERVATION_REDIS_TIMEOUT_SECONDS": "0.5",
    "RESERVATION_REDIS_POOL_SIZE": "8",
    "RESERVATION_KEEP_ALIVE_SECONDS": "620",
    "RESERVATION_HEADER_TIMEOUT_SECONDS": "5",
    "RESERVATION_BODY_TIMEOUT_SECONDS": "60",
    "RESERVATION_MAX_HEADER_BYTES": "16384",
    "RESERVATION_MAX_CONCURRENT_REQUESTS": "10000",
    "RESERVATION_MAX_BODY_BYTES_IN_FLIGHT": "1048576",
    "RESERVATION_MAX_REQUESTS_PER_CLIENT": "0",
    "RESERVATION_MAX_CONNECTIONS_PER_CLIENT": "64",
    "RESERVATION_MAX_STREAMS": "50",
    "RESERVATION_STREAM_KEEPALIVE_SECONDS": "2.5",
    "RESERVATION_PRODUCT_CACHE_CONTROL": "public, max-age=10, stale-while-revalidate=30",
    "RESERVATION_REQUIRE_CUSTOMER": "TRUE",
    "RESERVATION_IP_RATE_LIMIT": "600",
    "RESERVATION_IP_RATE_WINDOW_SECONDS": "0.5",
    "RESERVATION_CUSTOMER_RATE_LIMIT": "0",
    "RESERVATION_CUSTOMER_RATE_WINDOW_SECONDS": "10",
    "RESERVATION_MAX_HOLDS_PER_CUSTOMER": "0",
    "RESERVATION_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
    # One key of customer tokens is what a service takes (Settings.check); the variables are
    # read each on its own.
    "RESERVATION_CUSTOMER_TOKEN_SECRET": "customer-token-secret-0123456789abcdef",
    "RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY": EC_PUBLIC_KEY,
    "RESERVATION_CUSTOMER_JWKS_URL": "https://shop.example/.well-known/jwks.json",
    "RESERVATION_CUSTOMER_TOKEN_AUDIENCE": "drops",
    "RESERVATION_CUSTOMER_TOKEN_ISSUER": "https://shop.example",
    "RESERVATION_CUSTOMER_TOKEN_LEEWAY_SECONDS": "5",
    "RESERVATION_RESTOCK_ON_REFUND": "yes",
    "RESERVATION_DATA_DIR": "/var/lib/reservation",
    "RESERVATION_LOG_FORMAT": "json",
    "STRIPE_SECRET_KEY": "sk_test_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_456",
    "RESERVATION_SESSION_SECRET": f"{NEW_SECRET}, {OLD_SECRET}",
    "STRIPE_API_BASE": "http://127.0.0.1:12111/",
    "STRIPE_CONCURRENCY": "4",
    "STRIPE_RATE_PER_SECOND": "2.5",
    "STRIPE_TIMEOUT_SECONDS": "3",
    "STRIPE_MAX_ATTEMPTS": "5",
    "PUBLIC_URL": "https://shop.example/",
    "RESERVATION_OFFER_SECONDS": "120",
    "RESERVATION_SHOP_WEBHOOK_URL": "https://shop.example/hooks/reservation",
    "RESERVATION_SHOP_WEBHOOK_SECRET": "shop-webhook-secret-0123456789abcdef",
    "RESERVATION_SHOP_WEBHOOK_TIMEOUT_SECONDS": "3",
    "RESERVATION_OUTBOX_INTERVAL_SECONDS": "0",
}


def test_defaults_and_variables() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://cache:6379/2",
            "REDIS_CLUSTER": "1",
            "MONGODB_URI": "mongodb://user:pw@db:27017",
            "MONGODB_DATABASE": "shop",
            "STRIPE_SECRET_KEY": "sk_test_123",
            "STRIPE_WEBHOOK_SECRET": "whsec_456",
            "STRIPE_API_BASE": "http://127.0.0.1:12111",
            "RESERVATION_HOLD_SECONDS": "1",
            "RESERVATION_ADMIN_TOKEN": "admin-secret",
            "PUBLIC_URL": "https://shop.example/",
        }
    )
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.redis_cluster
    assert settings.mongodb_database == "shop"
    assert settings.hold_seconds == 1.0
    assert settings.public_url == "https://shop.example"
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert settings.sold_out_cache_seconds == 0.1
    assert settings.sweep_seconds == 30.0  # on by default: sessions of lapsed holds expire
    assert not settings.require_customer
    switched = Settings.from_env(
        {
            "RESERVATION_SOLD_OUT_CACHE_SECONDS": "0",
            "RESERVATION_SWEEP_SECONDS": "0",
            "RESERVATION_REQUIRE_CUSTOMER": "1",
        }
    )
    assert (switched.sold_out_cache_seconds, switched.sweep_seconds) == (0.0, 0.0)
    assert switched.require_customer
    shown = repr(settings)
    for secret in ("sk_test_123", "whsec_456", "admin-secret", "user:pw"):
        assert secret not in shown


def test_session_secrets_newest_first_and_never_shown() -> None:
    settings = Settings.from_env(EVERY_VARIABLE)
    assert settings.session_secrets == (NEW_SECRET, OLD_SECRET)
    assert NEW_SECRET not in repr(settings)
    assert OLD_SECRET not in repr(settings)


@pytest.mark.parametrize("value", ["short", f"{NEW_SECRET},", f"{NEW_SECRET}, x y z", "é" * 40])
def test_a_weak_or_malformed_session_secret_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="RESERVATION_SESSION_SECRET"):
        Settings.from_env({"RESERVATION_SESSION_SECRET": value})


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf"])
def test_bad_hold_seconds_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="RESERVATION_HOLD_SECONDS"):
        Settings.from_env({"RESERVATION_HOLD_SECONDS": value})


def test_every_field_is_one_variable() -> None:
    assert sorted(v.field for v in VARIABLES) == sorted(f.name for f in fields(Settings))
    assert len({v.name for v in VARIABLES}) == len(VARIABLES)
    assert sorted(EVERY_VARIABLE) == sorted(v.name for v in VARIABLES)


def test_every_field_can_be_set_from_the_environment() -> None:
    default, settings = Settings(), Settings.from_env(EVERY_VARIABLE)
    unchanged = [
        f.name for f in fields(Settings) if getattr(settings, f.name) == getattr(default, f.name)
    ]
    assert unchanged == []
    for f in fields(Settings):  # each variable reads its field's type
        expected = str if getattr(default, f.name) is None else type(getattr(default, f.name))
        assert type(getattr(settings, f.name)) in (expected, float if expected is int else expected)
    assert (settings.stripe_concurrency, settings.stripe_max_attempts) == (4, 5)
    assert settings.awaiting_payment_seconds == 3600.0
    assert not settings.reconcile_on_start
    assert (settings.rebuild_check_seconds, settings.redis_timeout_seconds) == (0.0, 0.5)
    assert (settings.ip_rate_limit, settings.ip_rate_window_seconds) == (600, 0.5)
    assert (settings.customer_rate_limit, settings.max_holds_per_customer) == (0, 0)
    assert settings.trusted_proxy_header == "X-Forwarded-For"
    assert (settings.max_requests_per_client, settings.max_connections_per_client) == (0, 64)
    assert (settings.max_streams, settings.stream_keepalive_seconds) == (50, 2.5)
    assert settings.product_cache_control == "public, max-age=10, stale-while-revalidate=30"
    assert (settings.stripe_api_base, settings.public_url) == (
        "http://127.0.0.1:12111",
        "https://shop.example",
    )
    # Empty means unset, as a blank line in an env file would.
    assert Settings.from_env(dict.fromkeys(EVERY_VARIABLE, "")) == default


@pytest.mark.parametrize(
    ("value", "expected"),
    [(word, True) for word in ("1", "true", "True", "YES", "on", " On ")]
    + [(word, False) for word in ("0", "false", "FALSE", "no", "Off")],
)
def test_flags_read_the_same_words_in_any_case(value: str, expected: bool) -> None:
    flags = [v.name for v in VARIABLES if isinstance(getattr(Settings(), v.field), bool)]
    assert len(flags) == 4
    for name in flags:
        field = next(v.field for v in VARIABLES if v.name == name)
        assert getattr(Settings.from_env({name: value}), field) is expected


@pytest.mark.parametrize("value", ["2", "y", "enabled", "tru", "-1"])
def test_an_unknown_flag_value_is_an_error_naming_the_variable(value: str) -> None:
    with pytest.raises(
        SettingsError, match=f"^REDIS_CLUSTER must be .*not {re.escape(repr(value))}"
    ):
        Settings.from_env({"REDIS_CLUSTER": value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRIPE_CONCURRENCY", "0"),
        ("STRIPE_CONCURRENCY", "2.5"),
        ("STRIPE_MAX_ATTEMPTS", "many"),
        ("STRIPE_RATE_PER_SECOND", "-1"),
        ("STRIPE_TIMEOUT_SECONDS", "0"),
        ("RESERVATION_AWAITING_PAYMENT_SECONDS", "inf"),
        ("RESERVATION_SWEEP_SECONDS", "-3"),
        ("RESERVATION_LOG_FORMAT", "xml"),
        ("RESERVATION_IP_RATE_LIMIT", "-1"),
        ("RESERVATION_IP_RATE_LIMIT", "1.5"),
        ("RESERVATION_CUSTOMER_RATE_WINDOW_SECONDS", "-60"),
        ("RESERVATION_MAX_HOLDS_PER_CUSTOMER", "many"),
        # Past what the scripts take (10^12 holds or requests, 10^15 ms).
        ("RESERVATION_MAX_HOLDS_PER_CUSTOMER", "1000000000001"),
        ("RESERVATION_CUSTOMER_RATE_LIMIT", "10000000000000"),
        ("RESERVATION_IP_RATE_WINDOW_SECONDS", "1e13"),
        ("RESERVATION_HOLD_SECONDS", "1e20"),
        ("RESERVATION_TRUSTED_PROXY_HEADER", "X-Forwarded-For:"),
        ("RESERVATION_TRUSTED_PROXY_HEADER", "X Real IP"),
        ("RESERVATION_MAX_STREAMS", "0"),
        ("RESERVATION_STREAM_KEEPALIVE_SECONDS", "0"),
        # A header value with a line break would start another header of the answer.
        ("RESERVATION_PRODUCT_CACHE_CONTROL", "max-age=1\r\nSet-Cookie: x=1"),
        ("RESERVATION_PRODUCT_CACHE_CONTROL", "max-age=1,\tpublic"),
        ("RESERVATION_PRODUCT_CACHE_CONTROL", "max-age=é"),
        ("RESERVATION_OFFER_SECONDS", "0"),
        ("RESERVATION_OFFER_SECONDS", "1.5"),
        ("RESERVATION_SHOP_WEBHOOK_URL", "shop.example/hooks"),
        ("RESERVATION_SHOP_WEBHOOK_URL", "ftp://shop.example/hooks"),
        ("RESERVATION_SHOP_WEBHOOK_SECRET", "short"),
        ("RESERVATION_SHOP_WEBHOOK_TIMEOUT_SECONDS", "0"),
        ("RESERVATION_OUTBOX_INTERVAL_SECONDS", "-1"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name} "):
        Settings.from_env({name: value})


def test_product_cache_control_off_sends_none() -> None:
    assert (
        Settings.from_env({"RESERVATION_PRODUCT_CACHE_CONTROL": "OFF"}).product_cache_control == ""
    )


def test_the_cli_refuses_a_bad_value_naming_the_variable() -> None:
    answer = CliRunner().invoke(main, ["stock"], env={"REDIS_CLUSTER": "True?"})
    assert answer.exit_code == 2
    assert "REDIS_CLUSTER must be" in answer.output


def test_the_readme_lists_every_variable_as_the_table_says() -> None:
    readme = README.read_text()
    assert markdown_table() in readme, f"the README's table should read:\n{markdown_table()}"
    listed = re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE)
    assert listed == [v.name for v in VARIABLES]


def test_serve_help_says_what_the_readme_says() -> None:
    answer = CliRunner().invoke(main, ["serve", "--help"], terminal_width=100)
    assert answer.exit_code == 0
    listed = re.findall(r"^  ([A-Z][A-Z_]+)$", answer.output, flags=re.MULTILINE)
    assert listed == [v.name for v in VARIABLES]
    said = " ".join(answer.output.split())
    for variable in VARIABLES:
        assert variable.meaning.replace("`", "") in said
        assert shown_default(variable).replace("`", "") in said


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESERVATION_CUSTOMER_TOKEN_SECRET", "too-short"),
        ("RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY", "not a key"),
        # A private key's PEM, or a curve other than P-256 (ES256), is no key to verify with.
        ("RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY", "-----BEGIN PRIVATE KEY-----\nAAAA\n"),
        (
            "RESERVATION_CUSTOMER_TOKEN_PUBLIC_KEY",
            ec.generate_private_key(ec.SECP384R1())
            .public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode(),
        ),
        ("RESERVATION_CUSTOMER_JWKS_URL", "file:///etc/passwd"),
        ("RESERVATION_CUSTOMER_TOKEN_LEEWAY_SECONDS", "-1"),
    ],
)
def test_bad_customer_token_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name} "):
        Settings.from_env({name: value})


def test_one_key_of_customer_tokens_at_most_and_the_secret_never_shown() -> None:
    secret = EVERY_VARIABLE["RESERVATION_CUSTOMER_TOKEN_SECRET"]
    settings = Settings.from_env({"RESERVATION_CUSTOMER_TOKEN_SECRET": secret})
    settings.check()
    assert settings.verifies_customers
    assert not Settings().verifies_customers
    assert secret not in repr(settings)
    with pytest.raises(SettingsError, match="at most one"):
        Settings.from_env(EVERY_VARIABLE).check()
    answer = CliRunner().invoke(
        main,
        ["stock"],
        env={
            "RESERVATION_CUSTOMER_TOKEN_SECRET": secret,
            "RESERVATION_CUSTOMER_JWKS_URL": "https://shop.example/jwks.json",
        },
    )
    assert answer.exit_code == 2
    assert "at most one of RESERVATION_CUSTOMER_TOKEN_SECRET" in answer.output


def test_a_shop_webhook_url_without_its_secret_is_refused_at_start() -> None:
    url = {"RESERVATION_SHOP_WEBHOOK_URL": "https://shop.example/hooks"}
    with pytest.raises(SettingsError, match="RESERVATION_SHOP_WEBHOOK_SECRET is not"):
        Settings.from_env(url).check()
    answer = CliRunner().invoke(main, ["serve"], env=url)
    assert answer.exit_code == 2
    assert "RESERVATION_SHOP_WEBHOOK_SECRET is not" in answer.output
    bad = CliRunner().invoke(main, ["serve"], env={"RESERVATION_SHOP_WEBHOOK_URL": "shop/hooks"})
    assert bad.exit_code == 2
    assert "RESERVATION_SHOP_WEBHOOK_URL must be an http:// or https:// URL" in bad.output


def test_the_shop_webhook_secret_is_never_shown() -> None:
    secret = "shop-webhook-secret-0123456789abcdef"
    settings = Settings.from_env(
        {
            "RESERVATION_SHOP_WEBHOOK_URL": "https://shop.example/h",
            "RESERVATION_SHOP_WEBHOOK_SECRET": secret,
        }
    )
    settings.check()
    assert settings.shop_webhook_secret == secret
    assert secret not in repr(settings)
