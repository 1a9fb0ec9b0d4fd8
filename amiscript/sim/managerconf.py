"""Read the user sections of an Asterisk manager.conf: secret, permit/deny and read/write.

The file syntax is Asterisk's config format: ``[section]`` headers (with optional
``(!)`` template marks and ``(template,...)`` inheritance), ``name = value`` or
``name => value`` lines, ``;`` comments (``\\;`` is a literal semicolon), ``;-- --;`` block
comments and ``#include``. ``[general]`` configures the listener, which the simulator takes from
its command line instead, so it is skipped. Every problem is a ScriptError with file and line.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from amiscript.errors import Location, ScriptError
from amiscript.sim import perms

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class AclRule:
    """One ``permit``/``deny`` entry: address and mask as integers so odd masks work too."""

    permit: bool
    version: int
    address: int
    mask: int

    def matches(self, peer: IPAddress) -> bool:
        # As ast_apply_ha: an IPv4 rule never applies to an IPv6 peer, nor the other way round
        # (IPv4-mapped peers are turned into IPv4 before they get here).
        return peer.version == self.version and int(peer) & self.mask == self.address


@dataclass(frozen=True, slots=True)
class ManagerUser:
    """A ``[name]`` section. ``read``/``write`` are permission flags (see perms)."""

    name: str
    secret: str | None
    acl: tuple[AclRule, ...] = ()
    read: int = perms.ALL
    write: int = perms.ALL
    location: Location | None = field(default=None, compare=False)

    def allows(self, peer: str) -> bool:
        """Asterisk's ast_apply_ha: start allowed, every matching rule decides anew, last wins."""
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        allowed = True
        for rule in self.acl:
            if rule.matches(address):
                allowed = rule.permit
        return allowed


def find_user(users: tuple[ManagerUser, ...], name: str) -> ManagerUser | None:
    """User names are looked up case-insensitively, as Asterisk does."""
    wanted = name.lower()
    return next((user for user in users if user.name.lower() == wanted), None)


def load_manager_conf(path: str | Path) -> tuple[ManagerUser, ...]:
    """Parse a manager.conf file into its users, in file order."""
    return _Parser().parse_file(Path(path), None)


def parse_manager_conf(text: str, filename: str) -> tuple[ManagerUser, ...]:
    """Parse manager.conf text; ``filename`` is used in error locations and for #include."""
    return _Parser().parse_text(text, filename)


@dataclass
class _Section:
    name: str
    location: Location
    template: bool
    options: list[tuple[str, str, Location]]


_MAX_INCLUDE_DEPTH = 10


class _Parser:
    def __init__(self) -> None:
        self.sections: list[_Section] = []
        self.current: _Section | None = None
        self.depth = 0

    def parse_file(self, path: Path, included_from: Location | None) -> tuple[ManagerUser, ...]:
        self._read(path, included_from)
        return self._users()

    def parse_text(self, text: str, filename: str) -> tuple[ManagerUser, ...]:
        self._feed(text, filename)
        return self._users()

    def _read(self, path: Path, included_from: Location | None) -> None:
        where = included_from or Location(str(path), 1)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ScriptError(f"cannot read manager.conf file {str(path)!r}: {reason}", where) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ScriptError("manager.conf is not valid UTF-8", Location(str(path), line)) from None
        self._feed(text, str(path))

    def _feed(self, text: str, filename: str) -> None:
        in_block_comment = False
        for number, raw_line in enumerate(text.splitlines(), start=1):
            where = Location(filename, number)
            line, in_block_comment = _strip_comments(raw_line, in_block_comment)
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                self._directive(line, where)
            elif line.startswith("["):
                self._section(line, where)
            else:
                self._option(line, where)
        if in_block_comment:
            raise ScriptError("block comment ';--' is never closed with '--;'", Location(filename, 1))

    def _directive(self, line: str, where: Location) -> None:
        word, _, argument = line[1:].partition(" ")
        if word not in ("include", "tryinclude"):
            raise ScriptError(f"unsupported directive '#{word}' (only #include and #tryinclude)", where)
        argument = argument.strip().strip('"<>')
        if not argument:
            raise ScriptError(f"#{word} needs a file name", where)
        if "\0" in argument:
            raise ScriptError(f"#{word} {argument!r}: a file name cannot hold a NUL character", where)
        target = Path(argument)
        if not target.is_absolute():
            target = Path(where.file).parent / target
        if word == "tryinclude" and not os.path.exists(target):  # never raises: a name too long is missing
            return
        if self.depth >= _MAX_INCLUDE_DEPTH:
            raise ScriptError("#include nested too deeply (a file includes itself?)", where)
        self.depth += 1
        try:
            self._read(target, where)
        finally:
            self.depth -= 1

    def _section(self, line: str, where: Location) -> None:
        close = line.find("]")
        if close < 0:
            raise ScriptError(f"section header without closing ']': {line!r}", where)
        name = line[1:close].strip()
        if not name:
            raise ScriptError("empty section name '[]'", where)
        rest = line[close + 1 :].strip()
        template = False
        inherits: list[str] = []
        if rest:
            if not (rest.startswith("(") and rest.endswith(")")):
                raise ScriptError(f"unexpected text after section header: {rest!r}", where)
            for item in (part.strip() for part in rest[1:-1].split(",")):
                if item == "!":
                    template = True
                elif item == "+":
                    raise ScriptError("'(+)' section continuation is not supported by the simulator", where)
                elif item:
                    inherits.append(item)
        options: list[tuple[str, str, Location]] = []
        for parent in inherits:
            source = next((s for s in self.sections if s.name == parent), None)
            if source is None:
                raise ScriptError(f"section [{name}] inherits from unknown template [{parent}]", where)
            options.extend(source.options)
        if name.lower() != "general":
            for earlier in self.sections:
                if not earlier.template and not template and earlier.name.lower() == name.lower():
                    raise ScriptError(f"user [{name}] is defined twice (first at {earlier.location})", where)
        self.current = _Section(name, where, template, options)
        self.sections.append(self.current)

    def _option(self, line: str, where: Location) -> None:
        if "=" not in line:
            raise ScriptError(f"expected 'name = value', found {line!r}", where)
        name, _, value = line.partition("=")
        value = value[1:] if value.startswith(">") else value
        name, value = name.strip(), value.strip()
        if not name:
            raise ScriptError(f"option without a name: {line!r}", where)
        if self.current is None:
            raise ScriptError(f"option {name!r} appears before any [section]", where)
        self.current.options.append((name, value, where))

    def _users(self) -> tuple[ManagerUser, ...]:
        return tuple(
            _build_user(section)
            for section in self.sections
            if not section.template and section.name.lower() != "general"
        )


def _strip_comments(line: str, in_block: bool) -> tuple[str, bool]:
    """Drop ``;`` comments and ``;-- ... --;`` blocks; ``\\;`` stays as a literal ``;``."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("--;", i)
            if end < 0:
                return "".join(out), True
            i = end + 3
            in_block = False
            continue
        char = line[i]
        if char == "\\" and line.startswith(";", i + 1):
            out.append(";")
            i += 2
        elif line.startswith(";--", i):
            in_block = True
            i += 3
        elif char == ";":
            break
        else:
            out.append(char)
            i += 1
    return "".join(out), in_block


def _build_user(section: _Section) -> ManagerUser:
    secret: str | None = None
    acl: list[AclRule] = []
    read = write = perms.ALL  # Asterisk's defaults when read/write are absent
    for name, value, where in section.options:
        key = name.lower()
        if key == "secret":
            secret = value
        elif key in ("permit", "deny"):
            acl.extend(_parse_acl(key == "permit", value, where))
        elif key == "acl":
            raise ScriptError("named ACLs ('acl =') are not supported by the simulator; use permit/deny", where)
        elif key == "read":
            read = perms.parse_classes(value)
        elif key == "write":
            write = perms.parse_classes(value)
        # Other options (displayconnects, writetimeout, eventfilter, setvar...) change nothing
        # a simulated client can see, so they are accepted and ignored like unknown ones.
    return ManagerUser(section.name, secret, tuple(acl), read, write, section.location)


def _parse_acl(permit: bool, value: str, where: Location) -> list[AclRule]:
    rules = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            raise ScriptError(f"empty address in '{'permit' if permit else 'deny'} = {value}'", where)
        if item.startswith("!"):
            raise ScriptError(f"negated ACL entries ({item!r}) are not supported by the simulator", where)
        rules.append(_parse_acl_item(permit, item, where))
    return rules


def _parse_acl_item(permit: bool, item: str, where: Location) -> AclRule:
    address_text, slash, mask_text = item.partition("/")
    try:
        address = ipaddress.ip_address(address_text.strip())
    except ValueError:
        raise ScriptError(f"invalid IP address {address_text!r} in ACL entry {item!r}", where) from None
    bits = address.max_prefixlen
    full = (1 << bits) - 1
    mask_text = mask_text.strip()
    if not slash:
        mask = full
    elif mask_text.isdigit():
        prefix = int(mask_text)
        if prefix > bits:
            raise ScriptError(f"prefix length /{prefix} is too long for {address} in {item!r}", where)
        mask = full ^ ((1 << (bits - prefix)) - 1)
    else:
        try:
            mask_address = ipaddress.ip_address(mask_text)
        except ValueError:
            raise ScriptError(f"invalid netmask {mask_text!r} in ACL entry {item!r}", where) from None
        if mask_address.version != address.version:
            raise ScriptError(f"netmask {mask_text!r} does not fit address {address} in {item!r}", where)
        mask = int(mask_address)
    return AclRule(permit, address.version, int(address) & mask, mask)
