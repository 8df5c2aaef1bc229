"""The device layer's packet paths (net/core/dev.c), as lists.

Receive: drivers hand frames to :func:`netif_rx` (the per-CPU backlog, here the world's
softirq queue); the world drains the backlog in NAPI-sized batches and calls
:func:`netif_receive_skb_list`, which does ``__netif_receive_skb_list_core``'s job: taps
(``ptype_all``), the device's ``rx_handler``, then protocol dispatch (``ptype_base``) with
consecutive packets for the same handler passed on as one sublist — that is what lets IPv4
route a whole sublist with the route hint.

Transmit: :func:`dev_queue_xmit_list` validates and hands a list to the driver one packet at
a time with the ``more`` hint true for all but the last (``dev_hard_start_xmit``,
``netdev_xmit_more``), so a driver rings one doorbell per batch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from netstack.core import hooks as _hooks
from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.gso import GsoError, netif_needs_gso, netif_skb_features, skb_gso_segment
from netstack.core.netdevice import IFF_UP, NetDevice, RxHandlerResult
from netstack.core.skb_csum import skb_csum_hwoffload_help
from netstack.core.vlan_core import (ANOTHER_ROUND, DROPPED, skb_vlan_untag, tap_packet,
                                     validate_xmit_vlan, vlan_check_id, vlan_do_receive)
from netstack.netfilter.core import (nf_hook_egress, nf_hook_egress_active, nf_hook_ingress,
                                     nf_hook_ingress_active, nf_hook_ingress_list)
from netstack.packet import skb_burst
from netstack.packet.skb_burst import SkbBurst

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

#: A protocol's list receive handler (``packet_type.list_func`` / ``.func``).
ListHandler = Callable[[list["Packet"]], None]

#: How many times a packet may go ANOTHER round through rx_handlers (stacked devices).
MAX_ANOTHER_ROUNDS = 8


def netif_rx(pkt: "Packet") -> None:
    """``netif_rx``/``enqueue_to_backlog``: queue for softirq processing on the world."""
    pkt.dev.net.world.backlog.append(pkt)  # type: ignore[union-attr]


def netif_rx_burst(b: SkbBurst) -> None:
    """``netif_rx`` of every row of the burst ``b``: one backlog entry, which the
    softirq loop hands to the device's NAPI as it is or turns into skbs
    (:meth:`netstack.core.world.World.run_softirq`)."""
    world = b.tmpl.dev.net.world  # type: ignore[union-attr]
    world.backlog.append(b)  # type: ignore[arg-type]
    world.backlog_bursts += 1


def netif_receive_bursts(bursts: list[SkbBurst]) -> bool:
    """One poll made only of bursts: each goes to its device's NAPI GRO
    (:meth:`Napi.receive_bursts`, the bursts of one NAPI together and in order), as
    :func:`netif_receive_skb_list` would pass their rows.  False, with nothing done,
    when a burst's device has no NAPI GRO: the caller then passes the rows as skbs."""
    polls: dict = {}
    for b in bursts:
        napi = getattr(b.tmpl.dev, "napi", None)
        if napi is None:
            return False
        polls.setdefault(napi, []).append(b)
    for napi, lst in polls.items():
        napi.receive_bursts(lst)
    return True


def netif_receive_skb_list(pkts: list["Packet"], gro: bool = True) -> None:
    """Receive a list of packets that arrived on (possibly) different devices.

    Packets of a device with NAPI GRO on (``dev.napi``: a veth after ``ethtool -K DEV gro
    on``) go through GRO first (``napi_gro_receive`` each, the flush at the end of the
    poll), which hands them back here (``gro=False``) in batches of ``gro_normal_batch``.
    That check rides on the per-device-run "slow path" test, so it costs nothing per
    packet.

    Per-device state (the namespace's taps for the device, its ``rx_handler``) is looked
    up once per run of packets from the same device — the kernel reads them under one RCU
    section per packet, and nothing in this loop can change them between two packets of a
    run except a tap or handler itself, which is why a packet with an ``rx_handler`` or a
    trace takes the general :func:`_receive_core` path.

    A device with netdev ingress hooks (a flowtable, netdev chains) and no tc ingress or
    GRO before them has its run of packets collected and passed through the hooks as one
    list (:func:`_nf_ingress_run`): the flowtable then forwards its hits per output device
    in one batch.  The sublist built so far is delivered first, as the kernel starts a new
    sublist whenever ``orig_dev`` changes."""
    if not pkts:
        return
    if _hooks.generic_xdp_needed:
        # do_xdp_generic (static key generic_xdp_needed_key): before taps and handlers,
        # and after GRO for a NAPI GRO device (netif_receive_skb_list_internal runs on
        # what GRO hands up): those packets are spared here and meet XDP on the way back
        if gro and any(getattr(p.dev, "napi", None) is not None for p in pkts):
            later = [p for p in pkts if getattr(p.dev, "napi", None) is not None]
            pkts = _hooks.xdp_generic_batch(
                [p for p in pkts if getattr(p.dev, "napi", None) is None]) + later
        else:
            pkts = _hooks.xdp_generic_batch(pkts)
        if not pkts:
            return
    world = pkts[0].dev.net.world  # type: ignore[union-attr]
    ptype_get = world.ptype_base.get
    ptype_base = world.ptype_base
    sublist: list[Packet] = []
    append = sublist.append
    cur_handler: ListHandler | None = None
    cur_dev: NetDevice | None = None
    taps: list | None = None
    ifindex = 0
    slow = True
    napi = None
    gro_pkts: dict = {}
    nf_run: list[Packet] | None = None
    for pkt in pkts:
        dev = pkt.dev
        if dev is not cur_dev:
            if nf_run:
                if sublist:
                    cur_handler(sublist)  # type: ignore[misc]
                    sublist = []
                    append = sublist.append
                    cur_handler = None
                _nf_ingress_run(cur_dev, nf_run, ptype_base)  # type: ignore[arg-type]
            cur_dev = dev
            ifindex = dev.ifindex  # type: ignore[union-attr]
            taps = dev.net.rx_taps.get(ifindex)  # type: ignore[union-attr]
            # an rx_handler, a clsact ingress chain or netdev ingress hooks (netfilter
            # netdev chains, flowtables): the general path
            napi = getattr(dev, "napi", None) if gro else None
            tcx = (_hooks.tcx_ingress_needed
                   and getattr(dev, "tcx_ingress", None) is not None)
            nf_ingress = nf_hook_ingress_active(dev)  # type: ignore[arg-type]
            slow = (dev.rx_handler is not None  # type: ignore[union-attr]
                    or napi is not None or tcx or nf_ingress)
            # netdev ingress hooks with only the taps in front: the run goes through them as
            # one list (nf_hook_ingress_list)
            nf_run = [] if nf_ingress and napi is None and not tcx else None
        # An out-of-band VLAN tag takes the general path (vlan_do_receive): the one
        # extra attribute test an untagged packet pays.
        if slow or pkt.trace is not None or pkt.vlan_proto:
            if napi is not None:
                gro_pkts.setdefault(napi, []).append(pkt)
                continue
            if nf_run is not None:
                nf_run.append(pkt)
                continue
            handler = _receive_core(pkt, ptype_base)
            if handler is None:
                continue
        else:
            # __netif_receive_skb_core without an rx_handler: taps, then ptype_base.
            handler = ptype_get(pkt.protocol)
            if handler is not None:
                pkt.skb_iif = ifindex
                if taps:
                    for tap in taps:
                        tap(pkt)
            elif pkt.protocol == 0x8100 or pkt.protocol == 0x88A8:
                # an in-packet tag (no ptype handles a VLAN TPID): skb_vlan_untag and the
                # another_round loop, taps included, in the general path
                handler = _receive_core(pkt, ptype_base)
                if handler is None:
                    continue
            else:
                pkt.skb_iif = ifindex
                if taps:
                    for tap in taps:
                        tap(pkt)
                _no_handler(pkt, dev, taps)  # type: ignore[arg-type]
                continue
        if handler is not cur_handler:
            if sublist:
                cur_handler(sublist)  # type: ignore[misc]
            sublist = [pkt]
            append = sublist.append
            cur_handler = handler
        else:
            append(pkt)
    if sublist:
        cur_handler(sublist)  # type: ignore[misc]
    if nf_run:
        _nf_ingress_run(cur_dev, nf_run, ptype_base)  # type: ignore[arg-type]
    for n, lst in gro_pkts.items():
        n.receive_list(lst)


def _no_handler(pkt: "Packet", dev: NetDevice, taps: list | None) -> None:
    """No ``ptype_base`` handler for the protocol: if a ``ptype_all`` tap (AF_PACKET) was
    the last deliverer the packet is consumed there and nothing counts a drop; with no
    deliverer at all it is ``rx_dropped`` (``rx_nohandler`` only for deliver_exact)."""
    if taps:
        return
    dev.stats.rx_dropped += 1
    kfree_skb_reason(pkt, "UNHANDLED_PROTO")


def _nf_ingress_run(dev: NetDevice, run: list["Packet"],
                    ptype_base: dict[int, ListHandler]) -> None:
    """``__netif_receive_skb_core`` for a run of packets received on ``dev``, whose netdev
    ingress hooks have nothing but the taps before them: per packet the VLAN untag and the
    taps, then :func:`nf_hook_ingress_list` over the whole run (the flowtable forwards its
    hits in one batch per output device), then the rest of the core per surviving packet,
    delivered to the protocol handlers in sublists, in order."""
    net = dev.net
    ifindex = dev.ifindex
    taps = net.rx_taps.get(ifindex)  # type: ignore[union-attr]
    ready: list[Packet] = []
    for pkt in run:
        pkt.skb_iif = ifindex
        if pkt.trace is not None:
            pkt.trace.event(pkt, "__netif_receive_skb_core")
        if pkt.protocol == 0x8100 or pkt.protocol == 0x88A8:
            if not skb_vlan_untag(pkt):
                kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
                continue
        if taps:
            tp = tap_packet(pkt) if pkt.vlan_proto else pkt
            for tap in taps:
                tap(tp)
        ready.append(pkt)
    handler: ListHandler | None = None
    sub: list[Packet] = []
    for pkt in nf_hook_ingress_list(dev, ready):
        h = _receive_core(pkt, ptype_base, True)
        if h is None:
            continue
        if h is not handler:
            if sub:
                handler(sub)  # type: ignore[misc]
            sub = [pkt]
            handler = h
        else:
            sub.append(pkt)
    if sub:
        handler(sub)  # type: ignore[misc]


def _receive_core(pkt: "Packet", ptype_base: dict[int, ListHandler],
                  ingress_done: bool = False) -> ListHandler | None:
    """``__netif_receive_skb_core`` for one packet: returns the protocol handler to batch
    it under, or None if the packet was consumed or dropped here.  ``ingress_done``: the
    first round's untag, taps, tc and netfilter ingress already ran (:func:`_nf_ingress_run`)."""
    for _ in range(MAX_ANOTHER_ROUNDS):
        dev = pkt.dev
        net = dev.net  # type: ignore[union-attr]
        if ingress_done:
            ingress_done = False
            taps = net.rx_taps.get(dev.ifindex)  # type: ignore[union-attr]
        else:
            pkt.skb_iif = dev.ifindex  # type: ignore[union-attr]
            if pkt.trace is not None:
                pkt.trace.event(pkt, "__netif_receive_skb_core")
            if pkt.protocol == 0x8100 or pkt.protocol == 0x88A8:
                # eth_type_vlan(skb->protocol): skb_vlan_untag moves the outermost tag out
                # of band (a NIC with rx-vlan-hw-parse did that already; the same result)
                if not skb_vlan_untag(pkt):
                    kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
                    return None
            taps = net.rx_taps.get(dev.ifindex)  # type: ignore[union-attr]
            if taps:
                # AF_PACKET + libpcap show an out-of-band tag back in the frame (auxdata)
                tp = tap_packet(pkt) if pkt.vlan_proto else pkt
                for tap in taps:
                    tap(tp)
            if _hooks.tcx_ingress_needed and getattr(dev, "tcx_ingress", None) is not None:
                pkt = _hooks.sch_handle_ingress(pkt)  # type: ignore[assignment]
                if pkt is None:
                    return None
                dev = pkt.dev
            # nf_ingress: netdev-family ingress chains and flowtables, after tc ingress
            # and before the rx_handler (__netif_receive_skb_core's CONFIG_NET_INGRESS).
            if nf_hook_ingress_active(dev) and not nf_hook_ingress(pkt):  # type: ignore[arg-type]
                return None
        if pkt.vlan_proto:
            # vlan_do_receive: a vlan device for (proto, VID) takes the packet
            r = vlan_do_receive(pkt)
            if r == ANOTHER_ROUND:
                continue
            if r == DROPPED:
                return None
        handler = dev.rx_handler  # type: ignore[union-attr]
        if handler is not None:
            res, pkt = handler(pkt)
            if res is RxHandlerResult.CONSUMED:
                return None
            if res is RxHandlerResult.ANOTHER:
                continue
        if pkt.vlan_proto:
            # check_vlan_id: unknown VID → PACKET_OTHERHOST; a VID-0 priority tag over
            # another tag is stripped and the inner one tried
            r = vlan_check_id(pkt)
            if r == ANOTHER_ROUND:
                continue
            if r == DROPPED:
                return None
        proto_handler = ptype_base.get(pkt.protocol)
        if proto_handler is None:
            _no_handler(pkt, dev, taps)  # type: ignore[arg-type]
            return None
        return proto_handler
    kfree_skb_reason(pkt, "NOT_SPECIFIED")
    return None


def dev_queue_xmit_list(dev: NetDevice, pkts: Iterable["Packet"]) -> None:
    """``dev_queue_xmit`` for a batch on a ``noqueue`` device: validate, tap, and hand to
    the driver with the xmit_more hint.

    A driver that has ``start_xmit_list(pkts)`` gets the whole batch in one call (it must
    behave exactly as ``start_xmit(p, more)`` for each packet with ``more`` true for all
    but the last: one doorbell per batch); others get one ``start_xmit`` per packet."""
    if type(pkts) is not list:
        pkts = list(pkts)
    if dev.net is not None and nf_hook_egress_active(dev):
        # nf_hook_egress (__dev_queue_xmit): netdev egress chains, before tc and the taps
        pkts = [p for p in pkts if nf_hook_egress(p, dev)]
    if _hooks.tcx_egress_needed and getattr(dev, "tcx_egress", None) is not None:
        # sch_handle_egress, per packet, before the queue/driver (and the taps)
        pkts = [q for q in (_hooks.sch_handle_egress(p, dev) for p in pkts) if q is not None]
    if not pkts:
        return
    if not dev.flags & IFF_UP:
        # "Virtual device %s asks to queue packet!": the batch is dropped.
        for p in pkts:
            dev.stats.tx_dropped += 1
            kfree_skb_reason(p, "DEV_READY", dev.net)
        return
    net = dev.net
    taps = net.tx_taps.get(dev.ifindex) if net is not None else None
    xmit_list = getattr(dev, "start_xmit_list", None)
    if xmit_list is not None and not taps:
        for p in pkts:
            # a VLAN tag to validate (validate_xmit_vlan), a GSO packet or a checksum
            # left to the device (validate_xmit_skb) takes the general path: the
            # attribute tests an ordinary packet pays
            if p.trace is not None or p.vlan_proto or p.ip_summed == 3 or p.gso_size:
                break
            p.dev = dev
        else:
            xmit_list(pkts)
            return
    if (len(pkts) == 1 and xmit_list is not None and not taps and skb_burst.ENABLED
            and getattr(dev, "start_xmit_burst", None) is not None):
        # one super-packet for a driver that takes bursts: software GSO leaves the
        # segments in one buffer (netstack/packet/skb_burst.py) and the driver gets
        # them as such — what start_xmit_list would get, without an skb per segment
        p = pkts[0]
        if p.gso_size and p.trace is None and not p.vlan_proto:
            p.dev = dev
            segs = validate_xmit_skb(p, dev, burst=True)
            if type(segs) is SkbBurst:
                dev.start_xmit_burst(segs)  # type: ignore[attr-defined]
                return
            if segs:
                xmit_list(segs)  # what the general path below does with them
            return
    # The general path: per packet validate_xmit_vlan, validate_xmit_skb (GSO, checksum
    # help), tap, trace, then the driver, in that order.
    out: list[Packet] = []
    for p in pkts:
        p.dev = dev
        if p.vlan_proto:
            validate_xmit_vlan(p, dev)
        if p.gso_size or p.ip_summed == 3:
            out.extend(validate_xmit_skb(p, dev))
        else:
            out.append(p)
    pkts = out
    if xmit_list is not None and not taps and pkts:
        # what validation produced (software GSO segments, checksums completed) goes to
        # a batching driver in one call too, unless a packet is traced
        for p in pkts:
            if p.trace is not None:
                break
        else:
            xmit_list(pkts)
            return
    last = len(pkts) - 1
    start_xmit = dev.start_xmit
    i = 0
    for p in pkts:
        if taps:
            tp = tap_packet(p) if p.vlan_proto else p
            for tap in taps:
                tap(tp)
        if p.trace is not None:
            p.trace.event(p, "dev_hard_start_xmit", info=f"more={int(i < last)}")
        start_xmit(p, i < last)
        i += 1


def validate_xmit_skb(pkt: "Packet", dev: NetDevice,
                      burst: bool = False) -> "list[Packet] | SkbBurst":
    """``validate_xmit_skb`` (net/core/dev.c): a GSO packet the device cannot take is
    segmented in software (``skb_gso_segment``); a CHECKSUM_PARTIAL packet whose
    checksum the device cannot finish gets it now (``skb_csum_hwoffload_help``).
    Returns what goes to the driver; a refused packet is dropped (tx_dropped).
    ``burst``: the driver takes bursts, so software GSO may return its segments as one
    (:class:`SkbBurst`)."""
    features = netif_skb_features(pkt, dev)
    if netif_needs_gso(pkt, features):
        try:
            segs = skb_gso_segment(pkt, features, burst=burst)
        except GsoError:
            dev.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)
            return []
        if segs is None:
            return [pkt]
        if pkt.trace is not None:
            pkt.trace.event(pkt, "skb_gso_segment", info=f"segs={len(segs)}")
        return segs
    if pkt.ip_summed == 3:
        if pkt.encapsulation:
            pkt.inner_transport_header = pkt.csum_start
        else:
            pkt.transport_header = pkt.csum_start
        if skb_csum_hwoffload_help(pkt, features):
            dev.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)
            return []
    return [pkt]


def dev_queue_xmit(pkt: "Packet", dev: NetDevice | None = None) -> None:
    """Single-packet ``dev_queue_xmit`` (a batch of one)."""
    dev_queue_xmit_list(dev if dev is not None else pkt.dev, [pkt])  # type: ignore[arg-type]
