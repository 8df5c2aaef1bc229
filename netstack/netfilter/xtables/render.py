"""Rules as text: ``iptables -S``/``iptables-save`` lines (nft_ipv4_save_rule /
nft_ipv6_save_rule, iptables 1.8.9) and ``iptables -L`` rows (print_rule_details,
print_ipv4_addresses, print_ifaces, xtables_print_num)."""
from __future__ import annotations

from netstack.netfilter.xtables import protos
from netstack.netfilter.xtables.addr import Net
from netstack.netfilter.xtables.parse import Rule
from netstack.netfilter.xtables.targets import Ct, Notrack, Standard


def _proto_save(rule: Rule) -> str:
    return protos.proto_name(rule.proto)


def save_rule(chain: str, rule: Rule, counters: bool = False, inline: bool = False) -> str:
    """One ``-A CHAIN …`` line (without newline); ``counters`` prefixes ``[p:b]`` as
    ``iptables-save -c`` does, ``inline`` puts ``-c P B`` before the target as
    ``iptables -S -v`` does."""
    out = f"[{rule.pcnt}:{rule.bcnt}] " if counters else ""
    out += f"-A {chain}"
    for flag, net, inv in (("-s", rule.src, rule.src_inv), ("-d", rule.dst, rule.dst_inv)):
        if net.is_any() and not inv:
            continue
        out += f"{' !' if inv else ''} {flag} {net.save_str()}"
    for flag, name, inv in (("-i", rule.iniface, rule.in_inv),
                            ("-o", rule.outiface, rule.out_inv)):
        if name:
            out += f"{' !' if inv else ''} {flag} {name}"
    if rule.proto:
        out += f"{' !' if rule.proto_inv else ''} -p {_proto_save(rule)}"
    if rule.frag:
        out += f"{' !' if rule.frag_inv else ''} -f"
    for m in rule.matches:
        out += f" -m {m.name}{m.save()}"
    if inline:
        out += f" -c {rule.pcnt} {rule.bcnt}"
    t = rule.target
    if t is not None:
        if rule.goto:
            out += f" -g {t.name}"
        else:
            out += f" -j {t.name}{t.save()}"
    return out


def print_num(n: int, exact: bool, notable: bool = False) -> str:
    """xtables_print_num: 5-wide with K/M/G/T scaling unless -x (8/10 wide then)."""
    if exact:
        return f"{n} " if notable else f"{n:8d} "
    if n <= 99999:
        return f"{n} " if notable else f"{n:5d} "
    for suffix in "KMGT":
        n = (n + 500) // 1000
        if n <= 9999 or suffix == "T":
            return f"{n}{suffix} " if notable else f"{n:4d}{suffix} "
    return f"{n} "


def list_header(verbose: bool, line_numbers: bool, exact: bool) -> str:
    out = "num  " if line_numbers else ""
    if verbose:
        out += ("    pkts      bytes " if exact else " pkts bytes ")
    out += "target     prot opt "
    if verbose:
        out += "in     out     "
    out += "source               destination         \n"
    return out


# Debian's /etc/networks and the loopback line of /etc/hosts: the names ``-L`` without -n
# finds (netstack has no resolver, so other addresses print numerically)
_NETWORKS = {"0.0.0.0": "default", "127.0.0.0": "loopback", "169.254.0.0": "link-local"}
_HOSTS = {"127.0.0.1": "localhost"}


def _net_text(net: Net, numeric: bool) -> str:
    """print_ipv4_addresses(): "anywhere"/"0.0.0.0/0", a host, or ADDR/CIDR|MASK, with
    names from hosts/networks unless -n."""
    if net.mask == 0:
        return ("::/0" if net.v6 else "0.0.0.0/0") if numeric else "anywhere"
    if net.v6 and net.addr == 0 and not numeric:
        return "anywhere"          # print_ipv6_addresses tests the address, not the mask
    c = net.cidr()
    addr = net.addr_str()
    if c == net.bits:
        return addr if numeric else _HOSTS.get(addr, addr)
    if not numeric and not net.v6:
        addr = _NETWORKS.get(addr, addr)
    return f"{addr}/{c if c >= 0 else net.mask_str()}"


def list_row(rule: Rule, num: int, verbose: bool, numeric: bool, line_numbers: bool,
             exact: bool) -> str:
    """One ``-L`` row (with its newline)."""
    out = f"{num:<4d} " if line_numbers else ""
    if verbose:
        out += print_num(rule.pcnt, exact) + print_num(rule.bcnt, exact)
    t = rule.target
    tname = "" if t is None else ("CT" if isinstance(t, Notrack) else t.name)
    out += f"{tname:<9s} "
    out += "!" if rule.proto_inv else " "
    pname = str(rule.proto) if numeric else ("all" if rule.proto == 0 else
                                             protos.proto_name(rule.proto))
    out += f"{pname:<4s} "
    out += ("!" if rule.frag_inv else "-") + ("f" if rule.frag else "-") + " "
    if verbose:
        iface_in = ("!" if rule.in_inv else "") + (rule.iniface or ("*" if numeric else "any"))
        iface_out = ("!" if rule.out_inv else "") + (rule.outiface or
                                                      ("*" if numeric else "any"))
        out += f" {iface_in:<6s} {iface_out:<6s} "
    out += ("!" if rule.src_inv else " ") + f"{_net_text(rule.src, numeric):<19s} "
    out += ("!" if rule.dst_inv else " ") + f"{_net_text(rule.dst, numeric):<19s} "
    if rule.goto:
        out += "[goto] "
    for m in rule.matches:
        out += m.listing(numeric)
    if t is not None and not isinstance(t, Standard):
        out += t.listing(numeric) if not isinstance(t, Notrack) else " NOTRACK"
    return out + "\n"


__all__ = ["save_rule", "list_header", "list_row", "print_num", "Ct"]
