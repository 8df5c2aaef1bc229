"""What an AF_PACKET ``SOCK_RAW`` send checks before a frame reaches a device.

``--inject`` and :meth:`netstack.api.Stack.inject` play ``tcpreplay -i DEV``, i.e. a packet
socket's ``sendmsg``.  net/packet/af_packet.c ``packet_snd`` refuses some frames outright,
before any skb exists (so no device counter moves): a down device (ENETDOWN), a frame
shorter than the link-layer header (``dev_validate_header`` → EINVAL), and a frame longer
than ``mtu + hard_header_len`` unless the 4 extra bytes are a VLAN tag
(``packet_extra_vlan_len_allowed``) (EMSGSIZE).  Reproducing that keeps impossible frames
out of the datapath, exactly as on a real host.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from netstack.core.netdevice import IFF_UP

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

ETH_HLEN = 14
VLAN_HLEN = 4
_VLAN_TPIDS = (b"\x81\x00", b"\x88\xa8")


def packet_snd_check(dev: "NetDevice", frame: bytes | bytearray | memoryview) -> int:
    """Return 0 if ``packet_snd`` would transmit ``frame`` on ``dev``, else the errno."""
    if not dev.flags & IFF_UP:
        return errno.ENETDOWN
    n = len(frame)
    hh = ETH_HLEN
    if n < hh:
        return errno.EINVAL
    if n > dev.mtu + hh + VLAN_HLEN:
        return errno.EMSGSIZE
    if n > dev.mtu + hh and bytes(frame[12:14]) not in _VLAN_TPIDS:
        return errno.EMSGSIZE
    return 0


def describe_refusal(err: int) -> str:
    """The strerror text a sender sees (``tcpreplay`` prints it per failed packet)."""
    return {errno.ENETDOWN: "Network is down", errno.EINVAL: "Invalid argument",
            errno.EMSGSIZE: "Message too long"}.get(err, errno.errorcode.get(err, str(err)))
