"""Users and roles from an auth file (JSON or TOML), checked server-side in every handler."""

from __future__ import annotations

import hmac
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector_agent.errors import InspectorError

ROLES = ("supervisor", "engineer")


class AuthError(InspectorError):
    """An auth file that cannot be used, or a user without the needed role."""


@dataclass(frozen=True)
class Users:
    """Username -> (password, role); with no users everyone local is an engineer."""

    accounts: dict[str, tuple[str, str]]

    @property
    def enabled(self) -> bool:
        """True when logins are required."""
        return bool(self.accounts)

    def check(self, username: str, password: str) -> bool:
        """Gradio's ``auth`` callback: constant-time password check."""
        account = self.accounts.get(username)
        return account is not None and hmac.compare_digest(account[0], password)

    def role(self, username: str | None) -> str:
        """The user's role; ``engineer`` when auth is off, ``""`` for an unknown user."""
        if not self.enabled:
            return "engineer"
        account = self.accounts.get(username or "")
        return account[1] if account else ""

    def require_engineer(self, username: str | None) -> None:
        """Raise :class:`AuthError` unless the user may change the knowledge base."""
        if self.role(username) != "engineer":
            raise AuthError("only engineers can change the knowledge base")


def load_users(path: str | Path | None) -> Users:
    """Read ``{"users": {name: {"password": ..., "role": "engineer"|"supervisor"}}}``."""
    if not path:
        return Users({})
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read auth file {file}: {exc}") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict) or not users:
        raise AuthError(f"{file}: expected a 'users' table with at least one user")
    accounts: dict[str, tuple[str, str]] = {}
    for name, entry in users.items():
        if not isinstance(entry, dict) or not entry.get("password"):
            raise AuthError(f"{file}: user {name!r} needs a password")
        role = entry.get("role", "supervisor")
        if role not in ROLES:
            raise AuthError(
                f"{file}: user {name!r} has unknown role {role!r} (use {', '.join(ROLES)})"
            )
        accounts[str(name)] = (str(entry["password"]), role)
    return Users(accounts)
