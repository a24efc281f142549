"""Bad input raises a clear InvalidRequest and leaves Redis exactly as it was."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from domain import errors
from domain.reservations import CartLine
from reservation.core.cart import Cart, normalize_cart
from reservation.core.inventory import Inventory
from reservation.core.keys import KeySpace

BAD_CARTS: list[tuple[str, Any]] = [
    ("zero quantity", [("a", 0)]),
    ("negative quantity", [("a", -1)]),
    ("float quantity", [("a", 1.0)]),
    ("string quantity", [("a", "1")]),
    ("bool quantity", [("a", True)]),
    ("none quantity", [("a", None)]),
    ("huge quantity", [("a", 10**12)]),
    ("summed over the maximum", [("a", 1_000_000), ("a", 1)]),
    ("empty cart", []),
    ("101 lines", [(f"s{i}", 1) for i in range(101)]),
    ("open brace sku", [("a{b", 1)]),
    ("close brace sku", [("a}b", 1)]),
    ("hash tag sku", [("{default}", 1)]),
    ("65 character sku", [("x" * 65, 1)]),
    ("empty sku", [("", 1)]),
    ("unicode sku", [("tée", 1)]),
    ("separator sku", [("a=1,b", 1)]),
    ("newline sku", [("a\n", 1)]),
    ("int sku", [(5, 1)]),
    ("line without quantity", [{"sku": "a"}]),
    ("line of three", [("a", 1, 2)]),
    ("string cart", "a"),
    ("mapping cart", {"a": 1}),
]


async def dump(client: Redis, keys: KeySpace) -> dict[bytes, Any]:
    """Every key of the test's key space with its serialized value."""
    found = [key async for key in client.scan_iter(match=keys.pattern())]
    return {key: await client.dump(key) for key in sorted(found)}


@pytest.fixture
async def stocked(keyspace: KeySpace) -> Any:
    client = Redis()
    inventory = Inventory(client, keys=keyspace)
    await inventory.stock.set_stock("a", 10, max_per_customer=5)
    held = await inventory.holds.reserve([("a", 1)], customer_id="bob")
    yield inventory, held
    async for key in client.scan_iter(match=keyspace.pattern()):
        await client.delete(key)
    await client.aclose()


@pytest.mark.parametrize(("case", "cart"), BAD_CARTS, ids=[case for case, _ in BAD_CARTS])
async def test_bad_cart_is_refused_and_changes_nothing(stocked: Any, case: str, cart: Any) -> None:
    inventory, _ = stocked
    before = await dump(inventory.client, inventory.keys)
    with pytest.raises(errors.InvalidRequest) as refused:
        await inventory.holds.reserve(cart)
    assert refused.value.code == "invalid_request"
    assert refused.value.message
    assert await dump(inventory.client, inventory.keys) == before


@pytest.mark.parametrize("customer", ["", "x" * 129, "has space", "tab\t", "é", 7], ids=repr)
async def test_bad_customer_id_is_refused(stocked: Any, customer: Any) -> None:
    inventory, _ = stocked
    before = await dump(inventory.client, inventory.keys)
    with pytest.raises(errors.InvalidRequest):
        await inventory.holds.reserve([("a", 1)], customer_id=customer)
    assert await dump(inventory.client, inventory.keys) == before


@pytest.mark.parametrize(
    ("sku", "total", "options"),
    [
        ("a{", 1, {}),
        ("", 1, {}),
        ("a", -1, {}),
        ("a", 1.5, {}),
        ("a", "3", {}),
        ("a", 10**13, {}),
        ("a", 5, {"pool": "x}"}),
        ("a", 5, {"max_per_customer": -1}),
    ],
    ids=repr,
)
async def test_bad_stock_update_is_refused(
    stocked: Any, sku: Any, total: Any, options: dict[str, Any]
) -> None:
    inventory, _ = stocked
    before = await dump(inventory.client, inventory.keys)
    with pytest.raises(errors.InvalidRequest):
        await inventory.stock.set_stock(sku, total, **options)
    assert await dump(inventory.client, inventory.keys) == before


@pytest.mark.parametrize(
    "reservation_id",
    ["", "nodot", "default.short", "{x}.abcdefghijklmnopqrstuv", "default.abcdefghijklmnop{q}"],
)
async def test_malformed_reservation_ids_are_not_found(stocked: Any, reservation_id: str) -> None:
    inventory, _ = stocked
    before = await dump(inventory.client, inventory.keys)
    for call in (inventory.holds.get, inventory.holds.release, inventory.holds.commit):
        with pytest.raises(errors.NotFound):
            await call(reservation_id)
    assert await dump(inventory.client, inventory.keys) == before


async def test_reserve_with_an_id_of_another_pool_is_refused(stocked: Any) -> None:
    inventory, _ = stocked
    before = await dump(inventory.client, inventory.keys)
    with pytest.raises(errors.MixedPools):
        await inventory.holds.reserve([("a", 1)], reservation_id="other.abcdefghijklmnopqrstuv")
    assert await dump(inventory.client, inventory.keys) == before


async def test_bad_hold_lengths_are_refused(stocked: Any) -> None:
    inventory, held = stocked
    with pytest.raises(errors.InvalidRequest):
        await inventory.holds.reserve([("a", 1)], hold_seconds=0)
    with pytest.raises(errors.InvalidRequest):
        await inventory.holds.extend(held.reservation.id, hold_seconds=-5)


def test_only_a_cart_normalize_cart_made_skips_the_checks() -> None:
    """The API normalizes a body's cart once and hands the Cart on; lines given any other way,
    CartLines included, are checked again."""
    cart = normalize_cart([("a", 1), ("a", 2)])
    assert isinstance(cart, Cart)
    assert cart == (CartLine("a", 3),)
    assert normalize_cart(cart) is cart
    with pytest.raises(errors.InvalidRequest):
        normalize_cart((CartLine("a", 0),))
    with pytest.raises(errors.InvalidRequest):
        normalize_cart([CartLine("a b", 1)])
