#!/bin/sh
# Runs in the test VM (tests/vm/vmlab.py --modules tun,tap,vhost_iotlb,vhost,vhost_net): the guest kernel's own
# vhost-net and tun. vireo-fwd forwards between two taps it makes (vhost-net:tap=va, tap=vb); each tap is then
# moved into its own network namespace with an address, and the guest kernel's TCP carries a few MB from one
# namespace to the other through vireo, every byte checked. Five runs: ACCESS_PLATFORM on (vireo answers the
# kernel's device IOTLB) and off (memory table), each with TSO on (--enable-lro: 64 KiB segments cross) and off,
# and once with two queue pairs per port (a multi-queue tap, a /dev/vhost-net per pair).
rc=0
# iproute2's ip (vmlab copies it to /bin/ip): by full path, or busybox's shell runs its own ip applet instead.
IP=/bin/ip
run() {
    echo "== $*"
    "$@" || rc=1
}
wait_for() {  # FILE TEXT PID: until TEXT is in FILE, PID exits, or 60 s pass
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null && kill -0 "$3" 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    grep -q "$2" "$1" && return 0
    echo "INFO waited $i x 0.1 s for '$2' in $1; process $3 $(kill -0 "$3" 2>/dev/null && echo alive || echo gone)"
    return 1
}

mkdir -p /run /var && { [ -e /var/run ] || ln -s /run /var/run; }
$IP netns add nsa || rc=1
$IP netns add nsb || rc=1
n=0
# access_platform, TSO, queue pairs: each switch on and off, and a multi-queue tap (two /dev/vhost-net per port).
for run in "1 1 1" "1 0 1" "0 1 1" "0 0 1" "1 1 2"; do
    set -- $run
    ap=$1 tso=$2 queues=$3
    n=$((n + 1))
    echo "== run $n: access_platform=$ap tso=$tso queues=$queues"
    # Each run its own files: a log left by the run before would satisfy a wait for its text before the
    # shell had truncated it for the new process.
    lro=""
    [ $tso = 1 ] && lro=--enable-lro
    vireo-fwd --forward-mode=io --sleep-when-idle=100 --json /tmp/fwd-$n.json $lro \
        "vhost-net:tap=va,access_platform=$ap,queues=$queues" "vhost-net:tap=vb,access_platform=$ap,queues=$queues" \
        >/tmp/fwd-$n.log 2>&1 &
    fwd=$!
    if ! wait_for /tmp/fwd-$n.log "polling on CPU" $fwd; then
        echo "FAIL vireo-fwd did not start"; cat /tmp/fwd-$n.log; rc=1; kill $fwd; wait $fwd; continue
    fi
    $IP link set va netns nsa && $IP link set vb netns nsb || rc=1
    $IP -n nsa addr add 10.9.0.1/24 dev va && $IP -n nsa link set va up && $IP -n nsa link set lo up || rc=1
    $IP -n nsb addr add 10.9.0.2/24 dev vb && $IP -n nsb link set vb up && $IP -n nsb link set lo up || rc=1
    vireo-vm-check tcp-recv --netns nsb --port 5000 --bytes 4000000 --seed $n --seconds 120 \
        >/tmp/recv-$n.log 2>&1 &
    recv=$!
    wait_for /tmp/recv-$n.log LISTENING $recv || rc=1
    run vireo-vm-check tcp-send --netns nsa --to 10.9.0.2:5000 --bytes 4000000 --seed $n --seconds 120
    wait $recv || rc=1
    cat /tmp/recv-$n.log
    kill -INT $fwd
    wait $fwd || { echo "FAIL vireo-fwd exit code $?"; rc=1; }
    grep -E "link|IOVA mode|configuration" /tmp/fwd-$n.log
    for port in 0 1; do  # each tap came up in its namespace: the link follows the tap, by event
        grep -q "port $port: configuration change: link up" /tmp/fwd-$n.log ||
            { echo "FAIL port $port: no link-up event when its tap came up"; rc=1; }
    done
    run vireo-vm-check fwd-json --file /tmp/fwd-$n.json --expect-iotlb $ap --expect-tso $tso --expect-queues $queues \
        --expect-mode "$([ $ap = 1 ] && echo va || echo pa)"
    # The taps went with vireo-fwd (they were not persistent): the namespaces are empty for the next run.
    if $IP -n nsa link show va >/dev/null 2>&1; then echo "FAIL tap va outlived vireo-fwd"; rc=1; fi
done
exit $rc
