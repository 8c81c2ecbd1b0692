"""INTERACTION_CREATE payloads of the fake Discord: slash commands and component clicks.

Shapes follow Discord's (and what discord.py's ``Interaction`` reads): the member with its
roles and permissions as a string, the channel, ``app_permissions``, ``context``,
``authorizing_integration_owners``. A slash command carries the id the fake gave that
command when it was synced (and ``data.guild_id`` for a guild command), so discord.py's
``CommandTree`` finds it; option types come from the synced schema when there is one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.discord_world import APPLICATION_ID, BOT_ID, GUILD_ID, World

__all__ = [
    "InteractionRecord",
    "base_payload",
    "click_payload",
    "modal_payload",
    "slash_payload",
    "sync_commands",
]

ATTACHMENT, USER, CHANNEL, ROLE = 11, 6, 7, 8
SIZE_LIMIT = 10 * 1024 * 1024  # a guild without boosts: 10 MiB per upload


@dataclass
class InteractionRecord:
    """One interaction the fake dispatched and what the bot did with it."""

    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user_id: str
    dispatched_at: float
    message_id: str | None = None  # @original: the component's message or the response
    acknowledged: bool = False
    expired: bool = False
    followups: list[str] = field(default_factory=list)


def base_payload(
    world: World,
    kind: int,
    interaction_id: str,
    *,
    user_id: str,
    channel_id: str | None,
    roles: Iterable[str] = (),
    permissions: int | None = None,
) -> dict[str, Any]:
    """The fields every interaction has; ``channel_id=None`` is the user's DM with the bot."""
    payload: dict[str, Any] = {
        "id": interaction_id,
        "application_id": APPLICATION_ID,
        "type": kind,
        "token": f"itok-{interaction_id}",
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": SIZE_LIMIT,
        "app_permissions": str(world.permissions(world.member_roles[BOT_ID], BOT_ID)),
    }
    if channel_id is None or world.guild_of(channel_id) is None:
        channel = world.dm(user_id)
        payload.update(
            channel_id=channel["id"],
            channel=channel,
            user=world.users[user_id],
            context=1,
            authorizing_integration_owners={"0": "0"},
        )
        return payload
    member = world.member(user_id, [*world.member_roles.get(user_id, []), *roles])
    allowed = world.permissions(member["roles"], user_id) if permissions is None else permissions
    member["permissions"] = str(allowed)
    payload.update(
        guild_id=GUILD_ID,
        guild={"id": GUILD_ID, "locale": "en-US", "features": []},
        guild_locale="en-US",
        channel_id=channel_id,
        channel={**(world.channel(channel_id) or {}), "permissions": str(allowed)},
        member=member,
        context=0,
        authorizing_integration_owners={"0": GUILD_ID},
    )
    return payload


def slash_payload(
    world: World,
    payload: dict[str, Any],
    name: str,
    values: Mapping[str, Any],
    *,
    subcommand: str | None,
    attachments: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    """Fill ``data`` of an application command interaction (type 2) into ``payload``."""
    command = synced(world, name, payload.get("guild_id"))
    schema = (command or {}).get("options") or []
    path = subcommand.split() if subcommand else []
    for part in path:
        schema = next((o.get("options") or [] for o in schema if o["name"] == part), [])
    resolved: dict[str, dict[str, Any]] = {}
    for attachment in attachments:
        resolved.setdefault("attachments", {})[attachment["id"]] = attachment
    options = [_option(world, schema, k, v, resolved) for k, v in values.items()]
    kinds = [2] * (len(path) - 1) + [1] if path else []
    for part, kind in reversed(list(zip(path, kinds, strict=True))):
        options = [{"name": part, "type": kind, "options": options}]
    data: dict[str, Any] = {
        "id": command["id"] if command else world.ids.next(),
        "name": name,
        "type": 1,
        "options": options,
    }
    if command and command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    if resolved:
        data["resolved"] = resolved
    payload["data"] = data
    return payload


def click_payload(
    world: World,
    payload: dict[str, Any],
    custom_id: str,
    message: dict[str, Any],
    *,
    component_type: int,
    values: Iterable[str] | None,
) -> dict[str, Any]:
    """Fill ``data`` and ``message`` of a component interaction (type 3) into ``payload``."""
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
    if values is not None:
        data["values"] = list(values)
    payload["data"] = data
    payload["message"] = dict(message)
    return payload


def modal_payload(
    payload: dict[str, Any],
    custom_id: str,
    values: Mapping[str, str],
    shown: dict[str, Any] | None,
) -> dict[str, Any]:
    """Fill ``data`` of a modal submit (type 5): the text inputs' values in their rows.

    The rows keep the shape the modal was shown with (action rows, or labels wrapping one
    input each); a modal the fake never saw gets one action row per value.
    """
    if shown is None:
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k}]} for k in values]
    else:
        rows = list(shown.get("components") or [])
    known = {c["custom_id"] for c in _inputs(rows)}
    unknown = set(values) - known
    if unknown:
        raise KeyError(f"the modal {custom_id!r} has no text input {sorted(unknown)}")
    components = [_submitted(row, values) for row in rows]
    payload["data"] = {"custom_id": custom_id, "components": components}
    return payload


def _inputs(components: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for component in components:
        if component["type"] == 4:
            found.append(component)
        found += _inputs(component.get("components") or [])
        found += _inputs([component["component"]] if component.get("component") else [])
    return found


def _submitted(component: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """What Discord sends back of a shown component: ids, types and typed values only."""
    if component["type"] == 4:
        value = values.get(component["custom_id"], component.get("value") or "")
        return {
            "type": 4,
            "id": component.get("id", 0),
            "custom_id": component["custom_id"],
            "value": value,
        }
    if component["type"] == 18:
        return {
            "type": 18,
            "id": component.get("id", 0),
            "component": _submitted(component["component"], values),
        }
    inner = [_submitted(c, values) for c in component.get("components") or []]
    return {"type": component["type"], "id": component.get("id", 0), "components": inner}


def sync_commands(
    world: World, guild_id: str | None, given: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Bulk overwrite: each command keeps its id across syncs (by name and type)."""
    stored = []
    for command in given:
        kind = int(command.get("type", 1))
        key = (guild_id, command["name"], kind)
        world.command_ids.setdefault(key, world.ids.next())
        entry: dict[str, Any] = {
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": None,
            "description_localizations": None,
            "name_localizations": None,
            **command,
            "id": world.command_ids[key],
            "application_id": APPLICATION_ID,
            "type": kind,
            "version": world.ids.next(),
        }
        if guild_id is not None:
            entry["guild_id"] = guild_id
        stored.append(entry)
    world.commands[guild_id] = stored
    return stored


def synced(world: World, name: str, guild_id: str | None) -> dict[str, Any] | None:
    """The synced command a slash interaction names: the guild's first, then global."""
    scopes = [guild_id, None] if guild_id else [None]
    for scope in scopes:
        for command in world.commands.get(scope, []):
            if command["name"] == name and command["type"] == 1:
                return command
    return None


def _option(
    world: World,
    schema: list[dict[str, Any]],
    name: str,
    value: Any,
    resolved: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    if isinstance(value, dict) and "filename" in value:  # an attachment from add_attachment
        resolved.setdefault("attachments", {})[value["id"]] = value
        return {"name": name, "type": ATTACHMENT, "value": value["id"]}
    if isinstance(value, dict) and "type" in value:  # given raw: {"type": 4, "value": 3}
        return {"name": name, **value}
    declared = next((o["type"] for o in schema if o["name"] == name), None)
    kind = declared or _inferred(value)
    if kind == USER and value in world.users:
        member = {k: v for k, v in world.member(value).items() if k != "user"}
        resolved.setdefault("users", {})[value] = world.users[value]
        resolved.setdefault("members", {})[value] = {**member, "permissions": "0"}
    elif kind == CHANNEL and world.channel(value) is not None:
        resolved.setdefault("channels", {})[value] = {
            **(world.channel(value) or {}),
            "permissions": "0",
        }
    elif kind == ROLE:
        resolved.setdefault("roles", {}).update(
            {r["id"]: r for r in world.roles if r["id"] == value}
        )
    return {"name": name, "type": kind, "value": value}


def _inferred(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3
