"""Where passwords and tokens (FAXAGE, SMTP, the other providers) come from, and file modes.

A password may sit in the config file, in a ``password_file``, in an environment
variable, or in a systemd credential (``LoadCredential=``).  The first one found
wins, in that order.  Like ssh with a private key, faxd refuses a file holding a
password that group or others can read, and says which ``chmod`` fixes it.
Every password found is registered with :func:`faxd.redact.register_secret`
before anything else can print it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faxd.config.reader import Table
from faxd.redact import register_secret


@dataclass(frozen=True)
class Secret:
    """A resolved password and a description of where it came from."""

    value: str = field(repr=False)
    source: str
    #: Whether it sits in the config file itself (which is worth a warning).
    inline: bool = False


@dataclass(frozen=True)
class SecretSource:
    """The names one password is looked up under."""

    env_var: str  # FAXD_FAXAGE_PASSWORD
    credential: str  # faxage-password, a file in $CREDENTIALS_DIRECTORY
    key: str = "password"  # the inline key in the section; its file is ``<key>_file``


FAXAGE_PASSWORD = SecretSource("FAXD_FAXAGE_PASSWORD", "faxage-password")
SMTP_PASSWORD = SecretSource("FAXD_SMTP_PASSWORD", "smtp-password")
HTTP_TOKEN = SecretSource("FAXD_HTTP_TOKEN", "callback-token", key="token")
VOIPMS_PASSWORD = SecretSource("FAXD_VOIPMS_PASSWORD", "voipms-password")
IFAX_TOKEN = SecretSource("FAXD_IFAX_TOKEN", "ifax-token", key="access_token")
FAXNUMMER_CODE = SecretSource("FAXD_FAXNUMMER_CODE", "faxnummer-code", key="product_code")


def file_mode(path: Path) -> int | None:
    """The permission bits of ``path``, or None when it cannot be stat'ed."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def check_private_file(table: Table, key: str, file: Path, what: str) -> None:
    """Refuse ``file`` (holding a password) when group or others may read it.

    ``key`` is ``""`` for the config file itself (the password is inline) and
    ``"password_file"`` for a password file.
    """
    mode = file_mode(file)
    if mode is not None and mode & 0o077:
        table.problem(
            key,
            f"{what} {file} holds a password but group/others can read it (mode {mode:04o}); "
            f"run `chmod 600 {file}` (owned by the user faxd runs as)"
            + ("" if key else ", or move the password to a password_file"),
        )


def resolve_password(
    table: Table, source: SecretSource, env: Mapping[str, str], config_file: Path
) -> Secret | None:
    """The first password found for ``table`` (``[faxage]`` or ``[smtp]``), or None.

    Problems (unreadable or world-readable files, empty passwords) go to the
    table's problem list; the password itself never appears in a message.
    """
    secret = _find(table, source, env, config_file)
    if secret is not None:
        register_secret(secret.value)
    return secret


def _find(
    table: Table, source: SecretSource, env: Mapping[str, str], config_file: Path
) -> Secret | None:
    inline = table.raw(source.key)
    password_file = table.path(f"{source.key}_file")
    if inline is not None:
        if not isinstance(inline, str) or not inline:
            table.problem("", f"the {source.key} key must be non-empty text in quotes")
            return None
        check_private_file(table, "", config_file, "the config file")
        return Secret(inline, f"{source.key} in {config_file}", inline=True)
    if password_file is not None:
        key = f"{source.key}_file"
        value = _read_secret_file(table, key, password_file, check_mode=True)
        return None if value is None else Secret(value, f"{key} {password_file}")
    from_env = env.get(source.env_var, "")
    if from_env:
        return Secret(from_env, f"environment variable {source.env_var}")
    credentials = env.get("CREDENTIALS_DIRECTORY", "")
    if credentials:
        path = Path(credentials) / source.credential
        if path.exists():
            value = _read_secret_file(table, "", path, check_mode=False)
            return (
                None if value is None else Secret(value, f"systemd credential {source.credential}")
            )
    return None


def _read_secret_file(table: Table, key: str, path: Path, *, check_mode: bool) -> str | None:
    """The file's text minus one trailing newline, or None after recording a problem."""
    if check_mode:
        check_private_file(table, key, path, key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        table.problem(key, f"{path} does not exist; create it (chmod 600) or fix the path")
        return None
    except PermissionError:
        table.problem(
            key, f"cannot read {path}: permission denied; let the user faxd runs as read it"
        )
        return None
    except OSError as exc:
        table.problem(key, f"cannot read {path}: {exc.strerror or exc}")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        table.problem(key, f"{path} is not UTF-8 text")
        return None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        table.problem(key, f"{path} is empty; put the password in it (one line)")
        return None
    if "\n" in text or "\r" in text:
        table.problem(key, f"{path} holds more than one line; put only the password in it")
        return None
    return text


#: The PostgreSQL password: only from outside the config file (see faxd.config.database).
DATABASE_PASSWORD = SecretSource("FAXD_DATABASE_PASSWORD", "database-password")


def resolve_outside_secret(
    table: Table, source: SecretSource, env: Mapping[str, str]
) -> Secret | None:
    """A password from ``source``'s environment variable or systemd credential, or None.

    For a secret the config file holds no key for (the database password): the
    first of the two found wins, as in :func:`resolve_password`.
    """
    from_env = env.get(source.env_var, "")
    secret: Secret | None = None
    if from_env:
        secret = Secret(from_env, f"environment variable {source.env_var}")
    elif env.get("CREDENTIALS_DIRECTORY", ""):
        path = Path(env["CREDENTIALS_DIRECTORY"]) / source.credential
        if path.exists():
            value = _read_secret_file(table, "", path, check_mode=False)
            if value is not None:
                secret = Secret(value, f"systemd credential {source.credential}")
    if secret is not None:
        register_secret(secret.value)
    return secret
