"""Test-only wiring of netstack/core/hooks.py into the datapath, for as long as the call
sites of /tmp/bpf_hooks.patch are not in netstack/core/dev.py (``hooks.DATAPATH_WIRED``).

The stand-ins call the hooks where the patch does: generic XDP on each receive batch before
``netif_receive_skb_list``; tc ingress after the taps (through the device's ``rx_handler``
slot, which ``_receive_core`` runs right after them); tc egress per packet before
``dev_queue_xmit_list``."""
from __future__ import annotations

import pytest

from netstack.core import hooks
from netstack.core.netdevice import RxHandlerResult


def _tc_rx_handler(pkt):  # type: ignore[no-untyped-def]
    q = hooks.sch_handle_ingress(pkt)
    return (RxHandlerResult.CONSUMED, pkt) if q is None else (RxHandlerResult.PASS, q)


def wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the stand-ins (no-op once the patch is applied)."""
    if hooks.DATAPATH_WIRED:
        return
    import netstack.api as api
    import netstack.core.dev as D
    import netstack.core.neighbour as N
    import netstack.core.world as W
    orig_rx = D.netif_receive_skb_list
    orig_tx = D.dev_queue_xmit_list

    def rx(pkts):  # type: ignore[no-untyped-def]
        if hooks.generic_xdp_needed:
            pkts = hooks.xdp_generic_batch(pkts)
        for p in pkts:
            dev = p.dev
            if getattr(dev, "tcx_ingress", None) is not None:
                if dev.rx_handler is None:
                    dev.rx_handler = _tc_rx_handler
            elif dev.rx_handler is _tc_rx_handler:
                dev.rx_handler = None
        orig_rx(pkts)

    def tx(dev, pkts):  # type: ignore[no-untyped-def]
        pkts = list(pkts)
        if getattr(dev, "tcx_egress", None) is not None:
            pkts = [q for q in (hooks.sch_handle_egress(p, dev) for p in pkts) if q is not None]
        orig_tx(dev, pkts)

    monkeypatch.setattr(W, "netif_receive_skb_list", rx)
    for mod in (D, api, N):
        monkeypatch.setattr(mod, "dev_queue_xmit_list", tx)
