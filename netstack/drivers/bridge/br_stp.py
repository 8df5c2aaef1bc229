"""The 802.1D spanning tree as the kernel runs it (net/bridge/br_stp.c, br_stp_if.c,
br_stp_timer.c), on the virtual clock.

Without STP (``stp_state 0``) an enabled port goes BLOCKING → FORWARDING at once (the
forward delay timer is still armed, as measured on 6.18, so a user-set LISTENING or
LEARNING state moves on when it expires).  With kernel STP (``stp_state 1``; outside the
initial namespace there is never a user-space helper, so any non-zero value means the
kernel's) ports pass LISTENING and LEARNING, ``forward_delay`` each; configuration BPDUs
go out of designated ports every ``hello_time``; received BPDUs run root selection,
designated port selection and port state selection; topology changes are signalled with
TCN BPDUs towards the root and acknowledged, and shorten FDB ageing to
``forward_delay``.  The bridge carrier follows "some port is forwarding".

The bridge id is the lowest port MAC unless the user set an address (NET_ADDR_SET); an
emptied bridge gets 00:00:00:00:00:00, as measured.  Timers use plain expiries where the
kernel uses ``round_jiffies`` (which aligns to a whole second of the machine's uptime) so
runs are reproducible.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.drivers.bridge.br_private import (
    BR_BPDU_GUARD, BR_KERNEL_STP, BR_NO_STP, BR_ROOT_BLOCK, BR_STATE_BLOCKING,
    BR_STATE_DISABLED, BR_STATE_FORWARDING, BR_STATE_LEARNING, BR_STATE_LISTENING,
    BR_USER_STP, NSEC_PER_SEC, NetBridge, NetBridgePort, br_make_port_id,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.clock import Timer
    from netstack.drivers.bridge.br_stp_bpdu import ConfigBpdu
    from netstack.packet.skb import Packet

NET_ADDR_SET = 3
#: MESSAGE_AGE_INCR: one jiffy when HZ < 256 (the reference kernel's CONFIG_HZ=250: 4 ms)
MESSAGE_AGE_INCR = 4_000_000
BR_HOLD_TIME = NSEC_PER_SEC


def _now(br: NetBridge) -> int:
    return br.dev.net.world.clock.now  # type: ignore[union-attr]


def _timer(br: NetBridge, owner: object, attr: str, fn, *args) -> "Timer":  # type: ignore[no-untyped-def]
    t = getattr(owner, attr)
    if t is None:
        t = br.dev.net.world.clock.timer(fn, *args)  # type: ignore[union-attr]
        setattr(owner, attr, t)
    return t


def _cancel(t: "Timer | None") -> None:
    if t is not None:
        t.cancel()


def bridge_id(br: NetBridge) -> bytes:
    """``br->bridge_id``: 2-byte priority, then the bridge MAC."""
    return br.priority.to_bytes(2, "big") + bytes(br.dev.address)


def br_is_root_bridge(br: NetBridge) -> bool:
    return br.designated_root == br.bridge_id


def br_get_port(br: NetBridge, port_no: int) -> NetBridgePort | None:
    return br.port_by_no(port_no) if port_no else None


def br_become_designated_port(p: NetBridgePort) -> None:
    br = p.br
    p.designated_root = br.designated_root
    p.designated_cost = br.root_path_cost
    p.designated_bridge = br.bridge_id
    p.designated_port = p.port_id


def br_is_designated_port(p: NetBridgePort) -> bool:
    return p.designated_bridge == p.br.bridge_id and p.designated_port == p.port_id


def br_set_state(p: NetBridgePort, state: int) -> None:
    """``br_set_state``: the port state only; per-VLAN states (``bridge vlan set … state``)
    are independent of it without MST, and both are checked on the datapath."""
    p.state = state


def _carrier(br: NetBridge) -> None:
    live = any(p.state == BR_STATE_FORWARDING for p in br.port_list)
    br.dev.set_carrier(live)


# ------------------------------------------------------------------ topology change
def __br_set_topology_change(br: NetBridge, val: bool) -> None:
    """``__br_set_topology_change``: during a change the FDB ages in 2×forward_delay."""
    if br.stp_enabled == BR_KERNEL_STP and br.topology_change != val:
        br.ageing_time = 2 * br.forward_delay if val else br.bridge_ageing_time
    br.topology_change = val


def br_topology_change_detection(br: NetBridge) -> None:
    """``br_topology_change_detection``."""
    if br.stp_enabled != BR_KERNEL_STP:
        return
    if br_is_root_bridge(br):
        __br_set_topology_change(br, True)
        _timer(br, br, "topology_change_timer", br_topology_change_timer_expired, br).mod_in(
            br.bridge_forward_delay + br.bridge_max_age)
    elif not br.topology_change_detected:
        br_transmit_tcn(br)
        _timer(br, br, "tcn_timer", br_tcn_timer_expired, br).mod_in(br.bridge_hello_time)
    br.topology_change_detected = True


def br_topology_change_acknowledged(br: NetBridge) -> None:
    br.topology_change_detected = False
    _cancel(br.tcn_timer)


def br_topology_change_acknowledge(p: NetBridgePort) -> None:
    p.topology_change_ack = True
    br_transmit_config(p)


# ------------------------------------------------------------------ transmission
def br_transmit_config(p: NetBridgePort) -> None:
    """``br_transmit_config``: at most one per hold time (1 s); message age grows by
    the time since the root port heard the root."""
    from netstack.drivers.bridge.br_stp_bpdu import ConfigBpdu, br_send_bpdu, encode_config
    if p.hold_timer is not None and p.hold_timer.active:
        p.config_pending = True
        return
    br = p.br
    if br_is_root_bridge(br):
        age = 0
    else:
        root = br_get_port(br, br.root_port)
        # in whole jiffies, as jiffies - designated_age is
        age = (_now(br) - root.designated_age) // MESSAGE_AGE_INCR * MESSAGE_AGE_INCR \
            + MESSAGE_AGE_INCR  # type: ignore[union-attr]
    if age < br.max_age:
        if br.stp_enabled == BR_KERNEL_STP:
            br_send_bpdu(p, encode_config(ConfigBpdu(
                br.topology_change, p.topology_change_ack, br.designated_root,
                br.root_path_cost, br.bridge_id, p.port_id, age, br.max_age, br.hello_time,
                br.forward_delay)))
        p.topology_change_ack = False
        p.config_pending = False
        if br.stp_enabled == BR_KERNEL_STP:
            _timer(br, p, "hold_timer", br_hold_timer_expired, p).mod_in(BR_HOLD_TIME)


def br_transmit_tcn(br: NetBridge) -> None:
    """``br_transmit_tcn``: a TCN BPDU out of the root port."""
    from netstack.drivers.bridge.br_stp_bpdu import br_send_bpdu, encode_tcn
    p = br_get_port(br, br.root_port)
    if p is not None and br.stp_enabled == BR_KERNEL_STP:
        br_send_bpdu(p, encode_tcn())


def br_config_bpdu_generation(br: NetBridge) -> None:
    for p in br.port_list:
        if p.state != BR_STATE_DISABLED and br_is_designated_port(p):
            br_transmit_config(p)


# ------------------------------------------------------------------ selection
def _should_become_root_port(p: NetBridgePort, root_port: int) -> bool:
    br = p.br
    if p.state == BR_STATE_DISABLED or br_is_designated_port(p):
        return False
    if br.bridge_id <= p.designated_root:
        return False
    if not root_port:
        return True
    rp = br_get_port(br, root_port)
    assert rp is not None
    for a, b in ((p.designated_root, rp.designated_root),
                 (p.designated_cost + p.path_cost, rp.designated_cost + rp.path_cost),
                 (p.designated_bridge, rp.designated_bridge),
                 (p.designated_port, rp.designated_port), (p.port_id, rp.port_id)):
        if a < b:
            return True
        if a > b:
            return False
    return False


def br_root_port_block(br: NetBridge, p: NetBridgePort) -> None:
    """``br_root_port_block``: a root_block port that would become root port listens."""
    br_set_state(p, BR_STATE_LISTENING)
    if br.forward_delay > 0:
        _timer(br, p, "forward_delay_timer", br_forward_delay_timer_expired, p).mod_in(
            br.forward_delay)


def br_root_selection(br: NetBridge) -> None:
    root_port = 0
    for p in br.port_list:
        if not _should_become_root_port(p, root_port):
            continue
        if p.flags & BR_ROOT_BLOCK:
            br_root_port_block(br, p)
        else:
            root_port = p.port_no
    br.root_port = root_port
    if not root_port:
        br.designated_root = br.bridge_id
        br.root_path_cost = 0
    else:
        rp = br_get_port(br, root_port)
        assert rp is not None
        br.designated_root = rp.designated_root
        br.root_path_cost = rp.designated_cost + rp.path_cost


def _should_become_designated_port(p: NetBridgePort) -> bool:
    br = p.br
    if br_is_designated_port(p):
        return True
    if p.designated_root != br.designated_root:
        return True
    if br.root_path_cost != p.designated_cost:
        return br.root_path_cost < p.designated_cost
    if br.bridge_id != p.designated_bridge:
        return br.bridge_id < p.designated_bridge
    return p.port_id < p.designated_port


def br_designated_port_selection(br: NetBridge) -> None:
    for p in br.port_list:
        if p.state != BR_STATE_DISABLED and _should_become_designated_port(p):
            br_become_designated_port(p)


def br_configuration_update(br: NetBridge) -> None:
    br_root_selection(br)
    br_designated_port_selection(br)


def br_make_forwarding(p: NetBridgePort) -> None:
    """``br_make_forwarding``."""
    br = p.br
    if p.state != BR_STATE_BLOCKING:
        return
    if br.stp_enabled == BR_NO_STP or br.forward_delay == 0:
        br_set_state(p, BR_STATE_FORWARDING)
        br_topology_change_detection(br)
        _cancel(p.forward_delay_timer)
    elif br.stp_enabled == BR_KERNEL_STP:
        br_set_state(p, BR_STATE_LISTENING)
    else:
        br_set_state(p, BR_STATE_LEARNING)
    # armed even without STP (measured: forward_delay_timer runs on 6.18); expiring in
    # FORWARDING it does nothing, in a user-set LISTENING/LEARNING it moves the port on
    if br.forward_delay != 0:
        _timer(br, p, "forward_delay_timer", br_forward_delay_timer_expired, p).mod_in(
            br.forward_delay)


def br_make_blocking(p: NetBridgePort) -> None:
    if p.state != BR_STATE_DISABLED and p.state != BR_STATE_BLOCKING:
        if p.state in (BR_STATE_FORWARDING, BR_STATE_LEARNING):
            br_topology_change_detection(p.br)
        br_set_state(p, BR_STATE_BLOCKING)
        _cancel(p.forward_delay_timer)


def br_port_state_selection(br: NetBridge) -> None:
    """``br_port_state_selection``; the bridge carrier is "a port forwards"."""
    for p in br.port_list:
        if p.state == BR_STATE_DISABLED:
            continue
        if br.stp_enabled != BR_USER_STP:
            if p.port_no == br.root_port:
                p.config_pending = False
                p.topology_change_ack = False
                br_make_forwarding(p)
            elif br_is_designated_port(p):
                _cancel(p.message_age_timer)
                br_make_forwarding(p)
            else:
                p.config_pending = False
                p.topology_change_ack = False
                br_make_blocking(p)
        if p.state != BR_STATE_BLOCKING:
            # br_multicast_enable_port: the port's own IGMP query restarts (BR2)
            from netstack.drivers.bridge.br_private import br2_hook
            mc = br2_hook("br_multicast", "br_multicast_enable_port")
            if mc is not None and br.multicast is not None:
                mc(p)
    _carrier(br)


def br_become_root_bridge(br: NetBridge) -> None:
    br.max_age = br.bridge_max_age
    br.hello_time = br.bridge_hello_time
    br.forward_delay = br.bridge_forward_delay
    br_topology_change_detection(br)
    _cancel(br.tcn_timer)
    if br.dev.flags & 1:
        br_config_bpdu_generation(br)
        _timer(br, br, "hello_timer", br_hello_timer_expired, br).mod_in(br.hello_time)


# ------------------------------------------------------------------ reception
def _supersedes_port_info(p: NetBridgePort, b: "ConfigBpdu") -> bool:
    for x, y in ((b.root, p.designated_root), (b.root_path_cost, p.designated_cost),
                 (b.bridge_id, p.designated_bridge)):
        if x < y:
            return True
        if x > y:
            return False
    if b.bridge_id != p.br.bridge_id:
        return True
    return b.port_id <= p.designated_port


def br_received_config_bpdu(p: NetBridgePort, b: "ConfigBpdu") -> None:
    """``br_received_config_bpdu``."""
    br = p.br
    was_root = br_is_root_bridge(br)
    if _supersedes_port_info(p, b):
        # br_record_config_information
        p.designated_root = b.root
        p.designated_cost = b.root_path_cost
        p.designated_bridge = b.bridge_id
        p.designated_port = b.port_id
        p.designated_age = _now(br) - b.message_age
        _timer(br, p, "message_age_timer", br_message_age_timer_expired, p).mod_in(
            b.max_age - b.message_age)
        br_configuration_update(br)
        br_port_state_selection(br)
        if not br_is_root_bridge(br) and was_root:
            _cancel(br.hello_timer)
            if br.topology_change_detected:
                _cancel(br.topology_change_timer)
                br_transmit_tcn(br)
                _timer(br, br, "tcn_timer", br_tcn_timer_expired, br).mod_in(
                    br.bridge_hello_time)
        if p.port_no == br.root_port:
            # br_record_config_timeout_values
            br.max_age = b.max_age
            br.hello_time = b.hello_time
            br.forward_delay = b.forward_delay
            __br_set_topology_change(br, b.topology_change)
            br_config_bpdu_generation(br)
            if b.topology_change_ack:
                br_topology_change_acknowledged(br)
    elif br_is_designated_port(p):
        br_transmit_config(p)  # br_reply


def br_received_tcn_bpdu(p: NetBridgePort) -> None:
    if br_is_designated_port(p):
        br_topology_change_detection(p.br)
        br_topology_change_acknowledge(p)


def br_stp_rcv(p: NetBridgePort, pkt: "Packet", bpdu: "ConfigBpdu | str") -> None:
    """``br_stp_rcv``: only with kernel STP on an up bridge and an enabled port, only to
    the bridge's group address; BPDU guard disables the port; a configuration BPDU whose
    message age exceeds its max age is ignored."""
    from netstack.core.drop_reason import consume_skb
    br = p.br
    mac = pkt.mac_header
    ok = (br.stp_enabled == BR_KERNEL_STP and br.dev.flags & 1
          and p.state != BR_STATE_DISABLED
          and bytes(pkt.buf[mac:mac + 6]) == bytes(br.group_addr))
    if ok:
        if p.flags & BR_BPDU_GUARD:
            br_stp_disable_port(p)
        elif bpdu == "tcn":
            br_received_tcn_bpdu(p)
        elif not isinstance(bpdu, str) and bpdu.message_age <= bpdu.max_age:
            br_received_config_bpdu(p, bpdu)
    consume_skb(pkt, "br_stp_rcv")


# ------------------------------------------------------------------ timers
def br_hello_timer_expired(br: NetBridge) -> None:
    if br.dev.flags & 1:
        br_config_bpdu_generation(br)
        if br.stp_enabled == BR_KERNEL_STP:
            _timer(br, br, "hello_timer", br_hello_timer_expired, br).mod_in(br.hello_time)


def br_message_age_timer_expired(p: NetBridgePort) -> None:
    """The root's information on ``p`` timed out: ``p`` becomes designated again."""
    br = p.br
    if p.state == BR_STATE_DISABLED:
        return
    was_root = br_is_root_bridge(br)
    br_become_designated_port(p)
    br_configuration_update(br)
    br_port_state_selection(br)
    if br_is_root_bridge(br) and not was_root:
        br_become_root_bridge(br)


def br_forward_delay_timer_expired(p: NetBridgePort) -> None:
    """``br_forward_delay_timer_expired``: LISTENING → LEARNING (re-armed), LEARNING →
    FORWARDING (topology change if designated somewhere, carrier on)."""
    br = p.br
    if p.state == BR_STATE_LISTENING:
        br_set_state(p, BR_STATE_LEARNING)
        _timer(br, p, "forward_delay_timer", br_forward_delay_timer_expired, p).mod_in(
            br.forward_delay)
    elif p.state == BR_STATE_LEARNING:
        br_set_state(p, BR_STATE_FORWARDING)
        if any(br_is_designated_port(q) for q in br.port_list):
            br_topology_change_detection(br)
        br.dev.set_carrier(True)


def br_tcn_timer_expired(br: NetBridge) -> None:
    if not br_is_root_bridge(br) and br.dev.flags & 1:
        br_transmit_tcn(br)
        _timer(br, br, "tcn_timer", br_tcn_timer_expired, br).mod_in(br.bridge_hello_time)


def br_topology_change_timer_expired(br: NetBridge) -> None:
    br.topology_change_detected = False
    __br_set_topology_change(br, False)


def br_hold_timer_expired(p: NetBridgePort) -> None:
    if p.config_pending:
        br_transmit_config(p)


# ------------------------------------------------------------------ br_stp_if.c
def br_init_port(p: NetBridgePort) -> None:
    p.port_id = br_make_port_id(p.priority, p.port_no)
    br_become_designated_port(p)
    br_set_state(p, BR_STATE_BLOCKING)
    p.topology_change_ack = False
    p.config_pending = False


def br_stp_enable_port(p: NetBridgePort) -> None:
    br_init_port(p)
    br_port_state_selection(p.br)


def br_stp_disable_port(p: NetBridgePort) -> None:
    """``br_stp_disable_port``: DISABLED, timers stopped, its dynamic entries flushed,
    the tree recomputed."""
    from netstack.drivers.bridge.br_fdb import br_fdb_delete_by_port
    from netstack.drivers.bridge.br_private import br2_hook
    br = p.br
    was_root = br_is_root_bridge(br)
    br_become_designated_port(p)
    br_set_state(p, BR_STATE_DISABLED)
    p.topology_change_ack = False
    p.config_pending = False
    for t in (p.message_age_timer, p.forward_delay_timer, p.hold_timer):
        _cancel(t)
    br_fdb_delete_by_port(br, p, 0, False)
    mc = br2_hook("br_multicast", "br_multicast_disable_port")
    if mc is not None and br.multicast is not None:
        mc(p)
    br_configuration_update(br)
    br_port_state_selection(br)
    if br_is_root_bridge(br) and not was_root:
        br_become_root_bridge(br)


def port_oper_up(dev) -> bool:  # type: ignore[no-untyped-def]
    """``netif_running(dev) && netif_oper_up(dev)``."""
    return bool(dev.flags & 1) and dev.carrier_ok()


def br_stp_enable_bridge(br: NetBridge) -> None:
    """``br_stp_enable_bridge`` (bridge up): hello timer, gc work in 100 ms, BPDUs, and
    the ports with carrier."""
    from netstack.drivers.bridge.br_fdb import br_fdb_cleanup
    if br.stp_enabled == BR_KERNEL_STP:
        _timer(br, br, "hello_timer", br_hello_timer_expired, br).mod_in(br.hello_time)
    _timer(br, br, "gc_timer", br_fdb_cleanup, br).mod_in(NSEC_PER_SEC // 10)
    br_config_bpdu_generation(br)
    for p in br.port_list:
        if port_oper_up(p.dev):
            br_stp_enable_port(p)


def br_stp_disable_bridge(br: NetBridge) -> None:
    """``br_stp_disable_bridge`` (bridge down)."""
    for p in br.port_list:
        if p.state != BR_STATE_DISABLED:
            br_stp_disable_port(p)
    __br_set_topology_change(br, False)
    br.topology_change_detected = False
    for t in (br.hello_timer, br.topology_change_timer, br.tcn_timer, br.gc_timer):
        _cancel(t)


def br_stp_set_enabled(br: NetBridge, val: int) -> None:
    """``br_stp_set_enabled``: any non-zero value starts STP, which outside the initial
    namespace is always the kernel's (no /sbin/bridge-stp upcall), so ``ip -d`` shows
    ``stp_state 1`` even after ``stp_state 2``."""
    new = BR_KERNEL_STP if val else BR_NO_STP
    if new == br.stp_enabled:
        return
    if new == BR_KERNEL_STP:
        # br_stp_start: forward delay clamped into [2 s, 30 s]; the hello timer starts;
        # ports already forwarding stay so ("to start timers on any ports left in
        # blocking")
        lo, hi = 2 * NSEC_PER_SEC, 30 * NSEC_PER_SEC
        br.bridge_forward_delay = min(max(br.bridge_forward_delay, lo), hi)
        if br_is_root_bridge(br):
            br.forward_delay = br.bridge_forward_delay
        br.stp_enabled = new
        if br.dev.flags & 1:
            _timer(br, br, "hello_timer", br_hello_timer_expired, br).mod_in(br.hello_time)
    else:
        _cancel(br.hello_timer)
        br.stp_enabled = new
    br_port_state_selection(br)


def br_stp_change_bridge_id(br: NetBridge, addr: bytes) -> None:
    """``br_stp_change_bridge_id``."""
    from netstack.drivers.bridge.br_fdb import br_fdb_change_mac_address
    was_root = br_is_root_bridge(br)
    br_fdb_change_mac_address(br, addr)
    old = br.bridge_id[2:]
    br.bridge_id = br.bridge_id[:2] + bytes(addr)
    br.dev.set_mac(addr)
    for p in br.port_list:
        if p.designated_bridge[2:] == old:
            p.designated_bridge = p.designated_bridge[:2] + bytes(addr)
        if p.designated_root[2:] == old:
            p.designated_root = p.designated_root[:2] + bytes(addr)
    br_configuration_update(br)
    br_port_state_selection(br)
    if br_is_root_bridge(br) and not was_root:
        br_become_root_bridge(br)


def br_stp_recalculate_bridge_id(br: NetBridge) -> bool:
    """``br_stp_recalculate_bridge_id``: the lowest port MAC (zeros with no port),
    unless the user set the address."""
    if br.dev.addr_assign_type == NET_ADDR_SET:
        return False
    addr = b"\0" * 6
    first = True
    for p in br.port_list:
        if first or bytes(p.dev.address) < addr:
            addr = bytes(p.dev.address)
            first = False
    if br.bridge_id[2:] == addr:
        return False
    br_stp_change_bridge_id(br, addr)
    return True


def br_stp_set_bridge_priority(br: NetBridge, prio: int) -> None:
    """``br_stp_set_bridge_priority``."""
    was_root = br_is_root_bridge(br)
    prio &= 0xFFFF
    pb = prio.to_bytes(2, "big")
    for p in br.port_list:
        if p.state != BR_STATE_DISABLED and br_is_designated_port(p):
            p.designated_bridge = pb + p.designated_bridge[2:]
    br.priority = prio
    br.bridge_id = pb + br.bridge_id[2:]
    br_configuration_update(br)
    br_port_state_selection(br)
    if br_is_root_bridge(br) and not was_root:
        br_become_root_bridge(br)


def br_stp_set_port_priority(p: NetBridgePort, prio: int) -> None:
    """``br_stp_set_port_priority`` (0..63, the top bits of the port id)."""
    new_id = br_make_port_id(prio, p.port_no)
    if br_is_designated_port(p):
        p.designated_port = new_id
    p.port_id = new_id
    p.priority = prio
    if p.br.bridge_id == p.designated_bridge and p.port_id < p.designated_port:
        br_become_designated_port(p)
        br_port_state_selection(p.br)


def br_stp_set_path_cost(p: NetBridgePort, cost: int) -> None:
    """``br_stp_set_path_cost``."""
    from netstack.drivers.bridge.br_private import BR_ADMIN_COST
    p.flags |= BR_ADMIN_COST
    p.path_cost = cost
    br_configuration_update(p.br)
    br_port_state_selection(p.br)
