"""Samba options passed through from the configuration (`server.samba_options` and
`shares.ID.samba_options`): which Samba knows, and which nasbox refuses and why.

Names are looked up in the installed Samba's own parameter table (`testparm
--show-all-parameters`), the way Samba reads them: case and spaces do not count, and a
synonym (`public`, `writeable`, `min protocol`) is the option it stands for. So a refused
option cannot come back under another spelling, and a misspelled one is reported instead of
being ignored. Values go through the same rule as every other smb.conf value
(nasbox.samba.literal: one line, no %-macro). testparm then reads the whole rendered file
(nasbox.samba.smbconf.testparm_problem).

Refused are the options that would break what nasbox promises: who reaches which folder and
how, no guests, SMB2.1 or newer and NTLMv2 only, no program run by smbd (several run as
root), smbd's files and log where nasbox keeps and reads them, nasbox's folders hidden, and
the settings nasbox makes from keys of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from nasbox import commands
from nasbox.samba import samba_cmds
from nasbox.samba.literal import not_literal
from nasbox.samba.smbconf import VFS_OBJECTS, smb_value, text_problem

if TYPE_CHECKING:
    from nasbox.config.checker import Checker
    from nasbox.config.sources import KeyPath

ACCESS = "nasbox decides who reaches each share and how (the share's paths, users and access)"
GUESTS = "nasbox lets no guest or anonymous user in"
PROGRAM = "it makes smbd run a program (as root, for several such options)"
FILES = "it moves files smbd writes as root (its databases, accounts, state) away from where nasbox keeps them"
UNCHECKED = "it makes Samba read configuration or shares nasbox has not checked"
LOGS = "smbd logs to stdout, where nasbox reads failed logins for the login ban"
LINKS = "users must not leave a share's folder through links"
CLIENT_LINKS = "clients could make real links on disk (the links they make are kept as data, never followed)"
HIDDEN = "nasbox hides its own folders (parity databases, versions, recycle bin) with it"
PRINTERS = "nasbox serves no printers"


def own_key(key: str) -> str:
    return f"nasbox sets it from {key}"


# Canonical Samba names (as testparm lists them) -> why nasbox refuses them in any value.
REFUSED: dict[str, str] = {
    **dict.fromkeys(
        (
            "path",
            "valid users",
            "invalid users",
            "read list",
            "write list",
            "read only",
            "admin users",
            "force user",
            "force group",
            "root directory",
            "security",
            "server role",
            "passdb backend",
            "username map",
            "username level",
            "unix password sync",
            "passwd chat",
        ),
        ACCESS,
    ),
    **dict.fromkeys(("guest ok", "guest only", "guest account", "map to guest", "usershare allow guests"), GUESTS),
    "panic action": PROGRAM,
    **dict.fromkeys(
        (
            "private dir",
            "lock directory",
            "state directory",
            "cache directory",
            "pid directory",
            "ncalrpc dir",
            "binddns dir",
            "smb passwd file",
            "utmp",
            "utmp directory",
            "wtmp directory",
            "ntp signd socket directory",
            "winbindd socket directory",
        ),
        FILES,
    ),
    **dict.fromkeys(("include", "copy", "config file", "config backend", "registry shares"), UNCHECKED),
    **dict.fromkeys(
        (
            "log file",
            "logging",
            "max log size",
            "syslog",
            "syslog only",
            "timestamp logs",
            "debug class",
            "debug hires timestamp",
            "debug pid",
            "debug prefix timestamp",
            "debug syslog format",
            "debug uid",
        ),
        LOGS,
    ),
    **dict.fromkeys(("debug encryption", "passwd chat debug"), "it writes keys or passwords into the log"),
    **dict.fromkeys(("wide links", "allow insecure wide links"), LINKS),
    **dict.fromkeys(("unix extensions", "smb1 unix extensions", "smb3 unix extensions"), CLIENT_LINKS),
    **dict.fromkeys(("veto files", "hide files", "delete veto files"), HIDDEN),
    **dict.fromkeys(("printable", "printer name", "printing", "load printers"), PRINTERS),
    "netbios name": own_key("server.name"),
    "workgroup": own_key("server.workgroup"),
    "hosts allow": own_key("server.hosts_allow"),
    "log level": own_key("server.log_level"),
    "comment": own_key("the share's comment"),
    "smb ports": "nasbox serves port 445, where its health check and the published port expect smbd",
    **dict.fromkeys(("disable netbios", "multicast dns register", "mdns name"), own_key("server.discovery")),
}
# Names holding these words start programs: `root preexec`, `add user script`, `dfree command`,
# `passwd program`, a module's `virusfilter:infected file command`, ...
PROGRAM_WORDS = ("exec", "script", "command", "program")
# Any name starting so: shares defined by users, outside nasbox's configuration.
REFUSED_PREFIXES = {"usershare": UNCHECKED}
# Module options (`module:option`) nasbox sets from keys of its own.
REFUSED_MODULES = {
    "shadow": own_key("the versions of sync jobs (Previous Versions)"),
    "recycle": own_key("shares.ID.recycle"),
}
REFUSED_MODULE_OPTIONS = {
    "fruit:timemachine": own_key("shares.ID.time_machine"),
    "fruit:timemachinemaxsize": own_key("shares.ID.time_machine_max_size"),
}
# Options where only some values keep nasbox's promise: name -> (allowed values, why).
MINIMUMS: dict[str, tuple[frozenset[str], str]] = {
    "server min protocol": (
        frozenset({"smb2", "smb2_10", "smb3", "smb3_00", "smb3_02", "smb3_11"}),
        "nasbox serves SMB 2.1 or newer: expected SMB2_10, SMB3, SMB3_00, SMB3_02 or SMB3_11",
    ),
    "ntlm auth": (
        frozenset({"ntlmv2-only", "disabled"}),
        "nasbox accepts NTLMv2 only: expected ntlmv2-only or disabled",
    ),
    "restrict anonymous": (frozenset({"2"}), GUESTS + ": expected 2"),
    "lanman auth": (frozenset({"no", "false", "off", "0"}), "nasbox accepts NTLMv2 only: expected no"),
    "raw ntlmv2 auth": (frozenset({"no", "false", "off", "0"}), "nasbox accepts NTLMv2 only: expected no"),
    "null passwords": (frozenset({"no", "false", "off", "0"}), GUESTS + ": expected no"),
    "encrypt passwords": (frozenset({"yes", "true", "on", "1"}), "nasbox accepts NTLMv2 only: expected yes"),
}
# Modules a share may add to nasbox's own (which stay, in their order). Others are refused:
# `widelinks` follows links out of the share, `fake_perms` reports rights users lack,
# `virusfilter` and `preopen` start programs, `cap` and `catia` rewrite names (catia nasbox
# sets), and modules for other filesystems or cluster setups do not belong here.
EXTRA_MODULES = frozenset(
    {
        "acl_xattr",
        "audit",
        "btrfs",
        "dirsort",
        "extd_audit",
        "fileid",
        "full_audit",
        "io_uring",
        "readahead",
        "readonly",
        "syncops",
        "time_audit",
        "worm",
        "xattr_tdb",
    }
)
BOOLEANS = {"yes", "true", "on", "1", "no", "false", "off", "0"}


def normalized(name: str) -> str:
    """A name as Samba compares names: without case or spaces ("Guest OK" is guestok)."""
    return re.sub(r"\s+", "", name).lower()


@dataclass(frozen=True)
class Parameter:
    """One option of Samba's parameter table."""

    name: str  # canonical: a synonym's is the option it stands for
    scope: str  # "global" or "local" (a share's, whose global value is every share's default)
    type: str  # P_BOOL, P_ENUM, P_INTEGER, ...
    values: tuple[str, ...] = ()  # an enum's values


def parse_table(text: str) -> dict[str, Parameter]:
    """`testparm --show-all-parameters` output: `[local]` and `[global]` headers, then lines
    `name=P_TYPE,[VALUE|VALUE,]FLAGS, (synonym of NAME)`; by normalized name."""
    table: dict[str, Parameter] = {}
    scope = "local"
    for line in text.splitlines():
        if line in ("[local]", "[global]"):
            scope = line.strip("[]")
            continue
        name, sep, rest = line.partition("=")
        if not sep or not rest.startswith("P_"):
            continue
        fields = rest.split(",")
        values = tuple(fields[1].split("|")) if fields[0] == "P_ENUM" else ()
        of = re.search(r"\((?:inverse )?synonym of ([^)]+)\)", rest)  # writeable: not read only
        table[normalized(name)] = Parameter(of.group(1) if of else name, scope, fields[0], values)
    return table


@cache
def parameter_table() -> dict[str, Parameter]:
    """The installed Samba's options; raises commands.CommandError or OSError without it."""
    return parse_table(commands.run(samba_cmds.list_parameters(), separate_stderr=True).stdout)


def smb_text(value: str | int | bool) -> str:
    """A YAML value as smb.conf writes it: booleans as yes and no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def problem(name: str, value: str | int | bool, section: str, table: dict[str, Parameter]) -> str | None:
    """Why the option may not be passed through to section ("global" or "share"), or None."""
    text = smb_text(value)
    key = normalized(name)
    if any(word in key for word in PROGRAM_WORDS):
        return f"refused: {PROGRAM}"
    module, colon, _ = key.partition(":")
    if colon:
        refused = REFUSED_MODULES.get(module) or REFUSED_MODULE_OPTIONS.get(key)
        return f"refused: {refused}" if refused else _value_problem(text)
    parameter = table.get(key)
    if parameter is None:
        return "Samba has no such option (misspelled?); module options are written module:option"
    canonical = parameter.name
    spelled = "" if normalized(canonical) == key else f" (Samba reads it as {canonical!r})"
    refused = REFUSED.get(canonical) or next(
        (why for prefix, why in REFUSED_PREFIXES.items() if canonical.startswith(prefix)), None
    )
    if refused:
        return f"refused{spelled}: {refused}"
    if section == "share" and parameter.scope == "global":
        return "a server-wide option, which Samba ignores in a share: expected it in server.samba_options"
    if canonical in MINIMUMS:
        allowed, why = MINIMUMS[canonical]
        if text.lower() not in allowed:
            return f"refused{spelled}: {why}"
    if canonical == "vfs objects":
        return _modules_problem(text)
    return _value_problem(text) or _type_problem(parameter, text)


def _value_problem(text: str) -> str | None:
    unreadable = not_literal(text)
    return f"expected a value Samba reads as written; it holds {unreadable}" if unreadable else None


def _type_problem(parameter: Parameter, text: str) -> str | None:
    if parameter.type in ("P_BOOL", "P_BOOLREV") and text.lower() not in BOOLEANS:
        return "expected true or false"
    if parameter.type == "P_ENUM" and text.lower() not in {v.lower() for v in parameter.values}:
        return f"expected one of {', '.join(parameter.values)}"
    if parameter.type == "P_INTEGER" and not re.fullmatch(r"-?[0-9]+", text):
        return "expected a whole number"
    if parameter.type == "P_OCTAL" and not re.fullmatch(r"0?[0-7]{1,4}", text):
        return "expected an octal mode such as 0644"
    return None


def modules(text: str) -> tuple[str, ...]:
    """The modules a `vfs objects` value adds to nasbox's own (which nasbox always sets)."""
    return tuple(m for m in text.replace(",", " ").split() if m not in VFS_OBJECTS)


def _modules_problem(text: str) -> str | None:
    foreign = sorted(set(modules(text)) - EXTRA_MODULES)
    if foreign:
        return (
            f"refused module {', '.join(foreign)}: a share may add {', '.join(sorted(EXTRA_MODULES))} "
            "to the modules nasbox sets"
        )
    return None


@dataclass(frozen=True)
class PassedThrough:
    """A section's accepted options: lines for smb.conf, and modules added to nasbox's."""

    options: tuple[tuple[str, str], ...] = ()
    modules: tuple[str, ...] = ()


def passed_through(c: Checker, where: KeyPath, given: dict[str, str | int | bool], section: str) -> PassedThrough:
    """The options given at where (a samba_options map) that nasbox passes on to Samba;
    every one it refuses is reported, naming it and why."""
    if not given:
        return PassedThrough()
    try:
        table = parameter_table()
    except (OSError, commands.CommandError) as e:
        c.problem(where, f"cannot check Samba options without Samba's testparm ({e})")
        return PassedThrough()
    options: list[tuple[str, str]] = []
    added: list[str] = []
    for name, value in given.items():
        why = problem(name, value, section, table)
        if why:
            c.problem(where + (name,), why)
        elif table.get(normalized(name), Parameter("", "", "")).name == "vfs objects":
            added += [m for m in modules(smb_text(value)) if m not in added]
        else:
            options.append((name, smb_text(value)))
    if options and tested(options, section):
        for option in options:
            refused = tested([option], section)
            if refused:
                c.problem(where + (option[0],), f"Samba refuses the value: {refused}")
    return PassedThrough(tuple(options), tuple(added))


def tested(options: list[tuple[str, str]], section: str) -> str | None:
    """What testparm says of options alone in a section of their kind, or None when it takes
    them: values whose form nasbox does not check (sizes, lists, ...)."""
    lines = [f"    {smb_value(name)} = {smb_value(value)}" for name, value in options]
    if section == "share":
        lines = ["[share]", "    path = /", *lines]
    return text_problem("\n".join(["[global]", *lines, ""]))
