"""Settings.from_env reads the README's variables; bad values refused clearly; no secret in repr."""

from __future__ import annotations

import pytest

from reservation.settings import Settings, SettingsError


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


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf"])
def test_bad_hold_seconds_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="RESERVATION_HOLD_SECONDS"):
        Settings.from_env({"RESERVATION_HOLD_SECONDS": value})
