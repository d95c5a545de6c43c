"""Drift: what differs between the wanted child and the one in the cluster, and the patches
that server-side apply alone cannot make (pure functions)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any


def stray_keys(
    wanted: dict[str, Any], actual: dict[str, Any] | None, paths: list[tuple[str, ...]]
) -> dict[str, Any]:
    """A merge patch that removes keys others added to maps the operator owns exactly."""
    patch: dict[str, Any] = {}
    for path in paths:
        want, have = wanted, actual or {}
        for part in path:
            want, have = (want or {}).get(part) or {}, (have or {}).get(part) or {}
        extra = {k: None for k in have if k not in want}
        if extra:
            node = patch
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = extra
    return patch


# a Kubernetes quantity; the exponent is short (a revision hash such as "54e7303758" is not a
# quantity, and read as one it overflows)
_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]{1,2})?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX: dict[str | None, Decimal] = {k: Decimal(str(v)) for k, v in {
    None: 1, "m": "0.001", "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
           "Pi": 2**50, "Ei": 2**60}.items()}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity (100m, 1Gi, 2) as a number; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value)
    if not m:
        return None
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except (InvalidOperation, ArithmeticError):
        return None


def differs(wanted: Any, actual: Any) -> bool:
    """True when ``actual`` lacks something ``wanted`` sets (fields the server or other
    writers add are ignored; Kubernetes quantities compare by value)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return True
        return any(differs(v, actual.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(wanted) != len(actual):
            return True
        return any(differs(w, a) for w, a in zip(wanted, actual, strict=True))
    if wanted == actual:
        return False
    a, b = quantity(wanted), quantity(actual)
    return a is None or b is None or a != b


def extended_lists(wanted: Any, actual: Any, path: tuple[str | int, ...] = ()) -> list[
    tuple[str | int, ...]
]:
    """Paths of lists the operator sets whose live copy has entries the operator did not ask
    for (another writer's keyed-list entries, which server-side apply keeps beside ours)."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(wanted, dict) and isinstance(actual, dict):
        for k, v in wanted.items():
            found += extended_lists(v, actual.get(k), (*path, k))
    elif isinstance(wanted, list) and isinstance(actual, list):
        if len(actual) != len(wanted):
            found.append(path)
        else:
            for i, (w, a) in enumerate(zip(wanted, actual, strict=True)):
                found += extended_lists(w, a, (*path, i))
    return found


def list_restore_patch(wanted: dict[str, Any], actual: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON merge patch that puts back exactly the wanted lists where another writer added
    entries. Merge patches replace lists whole, so the patch carries the outermost list on the
    path (e.g. all containers when one container's env grew)."""
    if actual is None:
        return {}
    patch: dict[str, Any] = {}
    for path in extended_lists(wanted, actual):
        # cut the path at its first list: a merge patch cannot address list items
        node_w: Any = wanted
        keys: list[str] = []
        for part in path:
            if isinstance(part, int):
                break
            keys.append(part)
            node_w = node_w[part]
            if isinstance(node_w, list):
                break
        if not keys:
            continue
        target = patch
        for k in keys[:-1]:
            target = target.setdefault(k, {})
        target[keys[-1]] = node_w
    return patch
