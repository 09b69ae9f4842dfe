#!/bin/sh
# Makes the compose file's consortium in DIR (default /var/lib/grantchain/consortium):
# three organisations, each with its own keys and TLS CA (`grantchain org init`), the
# genesis from their public bundles (`grantchain genesis build`), and each
# organisation's node configs (`grantchain org configure`: RPC over TLS, reads signed
# by members), listening on all addresses
# and dialling peers by their compose service names n1..n4. Does nothing if DIR already
# holds a consortium. tests/deploy/test_container.py runs it.
set -eu
dir="${1:-/var/lib/grantchain/consortium}"
if [ -f "$dir/genesis/genesis.json" ]; then
    echo "consortium already in $dir"
    exit 0
fi
grantchain org init "$dir/org1" --org org1 --node n1=n1 --node n4=n4
grantchain org init "$dir/org2" --org org2 --node n2=n2
grantchain org init "$dir/org3" --org org3 --node n3=n3
grantchain genesis build --out "$dir/genesis" --chain-id "${GRANTCHAIN_CHAIN_ID:-compose}" \
    "$dir/org1/bundle.json" "$dir/org2/bundle.json" "$dir/org3/bundle.json"
for org in org1 org2 org3; do
    grantchain org configure "$dir/$org" --genesis-dir "$dir/genesis" --listen-host 0.0.0.0
done
