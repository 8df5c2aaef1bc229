"""STP BPDUs on the wire (net/bridge/br_stp_bpdu.c, net/802/stp.c, net/llc).

Why a codec of its own: the kernel sends 802.1D configuration and TCN BPDUs as 802.3
frames with an LLC header (DSAP = SSAP = 0x42, UI control 0x03) to the bridge's
``group_addr``, from the port's MAC; times travel in 1/256 s units (``br_set_ticks``,
STP_HZ).  Received BPDUs come up the port's stack (br_handle_frame returns PASS for the
STP group with STP on) as ETH_P_802_2 and reach ``br_stp_rcv`` through the LLC SAP
dispatch; anything else with that EtherType has no handler (UNHANDLED_PROTO), as on a
kernel where no other LLC SAP is registered.  Malformed BPDUs are counted drops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netstack.core.drop_reason import kfree_skb_reason
from netstack.packet.errors import ParseError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.world import World
    from netstack.drivers.bridge.br_private import NetBridgePort
    from netstack.packet.skb import Packet

ETH_P_802_2 = 0x0004
LLC_SAP_BSPAN = 0x42
LLC_PDU_CMD_UI = 0x03
BPDU_TYPE_CONFIG = 0x00
BPDU_TYPE_TCN = 0x80
STP_HZ = 256
#: CONFIG_HZ of the reference kernel (Linux 6.18 as measured: CONFIG_HZ=250).  BPDU
#: times are converted through jiffies, so the rounding of message ages depends on it.
KERNEL_HZ = 250
JIFFY_NS = 1_000_000_000 // KERNEL_HZ


@dataclass(frozen=True)
class ConfigBpdu:
    """``struct br_config_bpdu`` (times in ns)."""

    topology_change: bool
    topology_change_ack: bool
    root: bytes
    root_path_cost: int
    bridge_id: bytes
    port_id: int
    message_age: int
    max_age: int
    hello_time: int
    forward_delay: int


def _ticks(ns: int) -> bytes:
    """``br_set_ticks``: jiffies → 1/256 s, truncated as the kernel's integer division."""
    jiffies = ns // JIFFY_NS
    return ((STP_HZ * jiffies) // KERNEL_HZ & 0xFFFF).to_bytes(2, "big")


def _from_ticks(b: bytes) -> int:
    """``br_get_ticks``: 1/256 s → jiffies (DIV_ROUND_UP) → ns."""
    ticks = int.from_bytes(b, "big")
    return -(-ticks * KERNEL_HZ // STP_HZ) * JIFFY_NS


def encode_config(b: ConfigBpdu) -> bytes:
    """``br_send_config_bpdu``'s 35 bytes."""
    flags = (0x01 if b.topology_change else 0) | (0x80 if b.topology_change_ack else 0)
    return (b"\x00\x00\x00" + bytes([BPDU_TYPE_CONFIG, flags]) + b.root
            + b.root_path_cost.to_bytes(4, "big") + b.bridge_id + b.port_id.to_bytes(2, "big")
            + _ticks(b.message_age) + _ticks(b.max_age) + _ticks(b.hello_time)
            + _ticks(b.forward_delay))


def encode_tcn() -> bytes:
    """``br_send_tcn_bpdu``'s 4 bytes."""
    return b"\x00\x00\x00" + bytes([BPDU_TYPE_TCN])


def decode(data: bytes) -> ConfigBpdu | str:
    """``br_stp_rcv``'s parse of the bytes after the LLC header: a ConfigBpdu, or "tcn";
    ParseError for what the kernel drops (short, wrong protocol id/version)."""
    if len(data) < 4:
        raise ParseError("PKT_TOO_SMALL", "bpdu shorter than 4 bytes")
    if data[0] or data[1] or data[2]:
        raise ParseError("INVALID_PROTO", "bpdu protocol id/version not 0")
    if data[3] == BPDU_TYPE_TCN:
        return "tcn"
    if data[3] != BPDU_TYPE_CONFIG:
        raise ParseError("INVALID_PROTO", f"bpdu type {data[3]:#x}")
    if len(data) < 35:
        raise ParseError("PKT_TOO_SMALL", "configuration BPDU shorter than 35 bytes")
    f = data[4]
    return ConfigBpdu(bool(f & 0x01), bool(f & 0x80), bytes(data[5:13]),
                      int.from_bytes(data[13:17], "big"), bytes(data[17:25]),
                      int.from_bytes(data[25:27], "big"), _from_ticks(data[27:29]),
                      _from_ticks(data[29:31]), _from_ticks(data[31:33]),
                      _from_ticks(data[33:35]))


def br_send_bpdu(p: "NetBridgePort", data: bytes) -> None:
    """``br_send_bpdu``: LLC header, 802.3 header (length field) from the port's MAC to
    the group address, NF_BR_LOCAL_OUT, then straight to the port's driver."""
    from netstack.drivers.bridge.br_forward import br_dev_queue_push_xmit
    from netstack.netfilter.core import NF_BR_LOCAL_OUT, NFPROTO_BRIDGE, nf_hook
    dev = p.dev
    net = dev.net
    if net is None:
        return
    llc = bytes([LLC_SAP_BSPAN, LLC_SAP_BSPAN, LLC_PDU_CMD_UI]) + data
    frame = bytes(p.br.group_addr) + bytes(dev.address) + len(llc).to_bytes(2, "big") + llc
    pkt = net.world.new_packet(frame)
    pkt.dev = dev
    pkt.protocol = ETH_P_802_2
    pkt.priority = 7  # TC_PRIO_CONTROL
    pkt.mac_header = pkt.data
    pkt.data += 14
    from netstack.drivers.bridge.br_private import BrInputCb
    pkt.cb = BrInputCb()
    if nf_hook(net, NFPROTO_BRIDGE, NF_BR_LOCAL_OUT, pkt, None, dev) != 1:
        return
    br_dev_queue_push_xmit(pkt)


def llc_rcv_list(pkts: list["Packet"]) -> None:
    """The ETH_P_802_2 handler: LLC SAP 0x42 UI frames are BPDUs for ``br_stp_rcv``;
    every other 802.2 frame has no SAP bound (UNHANDLED_PROTO)."""
    from netstack.drivers.bridge.br_private import br_port_get
    from netstack.drivers.bridge.br_stp import br_stp_rcv
    for pkt in pkts:
        d = pkt.data
        buf = pkt.buf
        dev = pkt.dev
        if pkt.tail - d < 3 or buf[d] != LLC_SAP_BSPAN or buf[d + 1] != LLC_SAP_BSPAN \
                or buf[d + 2] != LLC_PDU_CMD_UI:
            dev.stats.rx_dropped += 1  # type: ignore[union-attr]
            kfree_skb_reason(pkt, "UNHANDLED_PROTO")
            continue
        p = br_port_get(dev)  # type: ignore[arg-type]
        if p is None:
            kfree_skb_reason(pkt, "NOT_SPECIFIED")
            continue
        try:
            bpdu = decode(bytes(buf[d + 3:pkt.tail]))
        except ParseError:
            # br_stp_rcv's "goto err": a plain kfree_skb
            kfree_skb_reason(pkt, "NOT_SPECIFIED")
            continue
        br_stp_rcv(p, pkt, bpdu)


def register_llc(world: "World") -> None:
    """Bind the STP SAP once per world (``stp_proto_register`` → ``llc_sap_open``)."""
    if world.ptype_base.get(ETH_P_802_2) is None:
        world.ptype_base[ETH_P_802_2] = llc_rcv_list
