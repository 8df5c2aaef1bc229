#!/bin/sh
# Regenerate the ``nft list ruleset`` goldens: load each *.nft into a scratch namespace
# with Debian's nft 1.0.6 and save ``list ruleset`` and ``-a list ruleset``.  Needs root.
set -e
cd "$(dirname "$0")"
ns=nstk-nftlist-$$
for f in *.nft; do
	b=${f%.nft}
	# a fresh namespace per file: table handles count per namespace, never reset
	ip netns add $ns
	trap 'ip netns del $ns' EXIT
	ip netns exec $ns nft -f "$f"
	ip netns exec $ns nft list ruleset > "$b.out"
	ip netns exec $ns nft -a list ruleset > "$b.handles.out"
	ip netns exec $ns nft -j list ruleset > "$b.json.out"
	ip netns del $ns
	trap - EXIT
done
