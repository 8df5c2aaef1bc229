"""The extension interface shared by matches and targets (libxtables ``struct
xtables_match``/``xtables_target``): option parsing, final check, save and xlate."""
from __future__ import annotations

from dataclasses import dataclass, field

from netstack.netfilter.xtables.errors import XtablesError, param_problem


@dataclass
class ParseCtx:
    """What an extension's parser may look at: program name (for messages), family and
    the rule's ``-p`` so far (iptables parses options strictly left to right)."""

    prog: str
    v6: bool
    proto: int = 0
    proto_inv: bool = False
    #: lines an extension prints on stderr before failing (libipt_REJECT's warning)
    warnings: list[str] = field(default_factory=list)

    def err(self, msg: str) -> XtablesError:
        e = param_problem(self.prog, msg)
        e.stderr = "".join(self.warnings) + e.stderr
        return e


class Ext:
    """One loaded match or target.  ``options`` maps each long option to whether it takes an
    argument; ``invertible`` lists the options that accept a preceding ``!``."""

    name = ""
    options: dict[str, bool] = {}
    invertible: frozenset[str] = frozenset()
    #: alias -> the option's first name in the extension's table (used in x6 messages)
    canonical: dict[str, str] = {}
    #: options parsed through libxtables' x6 framework: each at most once, some exclusive
    x6 = True
    exclusive: tuple[frozenset[str], ...] = ()
    #: options whose absence fails x6_fcheck ("must be specified")
    mandatory: tuple[str, ...] = ()

    def x6_check(self, opt: str, pc: "ParseCtx") -> None:
        """xtables_option_parse(): "can only be used once" / "cannot be used together"."""
        if not self.x6:
            return
        used = self.__dict__.setdefault("_x6_used", [])
        canon = self.canonical.get(opt, opt)
        if canon in used:
            raise pc.err(f"{self.name}: option \"{canon}\" can only be used once.\n")
        used.append(canon)

    def x6_excl_check(self, pc: "ParseCtx") -> None:
        """xtables_options_fcheck(): the first used option (in table order) that excludes
        another used one is reported together with that one."""
        used = self.__dict__.get("_x6_used", [])
        order: list[str] = []
        for opt in self.options:
            c = self.canonical.get(opt, opt)
            if c not in order:
                order.append(c)
        for first in (o for o in order if o in used):
            for group in self.exclusive:
                if first in group:
                    other = next((o for o in order if o in used and o in group and
                                  o != first), None)
                    if other is not None:
                        raise pc.err(f"{self.name}: option \"{first}\" cannot be used "
                                     f"together with \"{other}\".\n")

    def x6_mandatory(self, pc: "ParseCtx") -> None:
        used = self.__dict__.get("_x6_used", [])
        for opt in self.mandatory:
            if opt not in used:
                raise pc.err(f"{self.name}: option \"{opt}\" must be specified\n")

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        raise NotImplementedError

    def final_check(self, pc: ParseCtx) -> None:
        """x6_fcheck: reject incomplete option sets after the whole line is parsed."""

    def save(self) -> str:
        """The options as ``iptables -S`` prints them, each with a leading space."""
        return ""

    def xlate(self, v6: bool) -> list[str] | None:
        """nft tokens, or None when iptables-translate cannot translate this extension."""
        return []

    def listing(self, numeric: bool) -> str:
        """``iptables -L`` text (with its leading space)."""
        return ""

    def key(self) -> tuple[object, ...]:
        """What makes two instances equal for ``-D`` by rule specification."""
        return (self.name, self.save())


def parse_markmask(text: str, ext: str, opt: str, pc: "ParseCtx") -> tuple[int, int | None]:
    """x6 XTTYPE_MARKMASK32: ``VALUE[/MASK]`` (mask None when absent)."""
    v_s, slash, m_s = text.partition("/")
    v = parse_uint(v_s, 0xFFFFFFFF)
    if v is None:
        raise pc.err(f"{ext}: bad integer value for option \"{opt}\", or out of range.\n")
    if not slash:
        return v, None
    m_head, slash2, _ = m_s.partition("/")
    m = parse_uint(m_head, 0xFFFFFFFF)
    if m is None:
        raise pc.err(f"{ext}: bad integer value for option \"{opt}\", or out of range.\n")
    if slash2:
        raise pc.err(f"{ext}: trailing garbage after value for option \"{opt}\".\n")
    return v, m


def parse_uint(text: str, limit: int) -> int | None:
    """strtoul(…, 0) as libxtables' xtables_strtoui does: decimal, 0x hex or 0 octal."""
    t = text.strip()
    try:
        if t.lower().startswith("0x"):
            v = int(t[2:], 16)
        elif len(t) > 1 and t.startswith("0"):
            v = int(t[1:], 8)
        else:
            v = int(t, 10)
    except ValueError:
        return None
    return v if 0 <= v <= limit else None
