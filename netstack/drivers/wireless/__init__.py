"""A wireless access point model: mac80211 AP-mode forwarding and hostapd's snooping.

* :mod:`.ap` — the AP interface (``ApDevice``, one bridge port as ``wlan0`` is under
  hostapd), its associated stations (``StationDevice`` in the stations' namespaces), the
  air between them: unicast to one station, group-addressed frames once under the group
  key to every station (``multicast_to_unicast`` converts them), internal relaying unless
  ``ap_isolate`` (net/mac80211/rx.c ``ieee80211_deliver_skb``, tx.c); with
  ``per_sta_vif`` every station is a bridge port of its own (``wlan0.staN``).
* :mod:`.snoop` — hostapd's Proxy ARP support (src/ap/x_snoop.c, dhcp_snoop.c,
  ndisc_snoop.c): hairpin + ``proxy_arp_wifi`` on the bridge port, a binding table learned
  from DHCPACKs, ARP and NS/NA of associated stations, installed as permanent neighbour
  entries on the bridge and removed on disassociation.

See docs/wireless-ap.md.
"""
